"""The email channel: confirmed subscriptions, one email per notice, one-click unsubscribe."""
