"""The Web Push channel: notices in residents' browsers (RFC 8030, 8291, 8292), no app."""
