"""The push channel: notices to the residents' phone app through FCM topics (firebase-admin)."""
