"""One module per SMS provider, each behind `services.sms.sender.Provider`."""
