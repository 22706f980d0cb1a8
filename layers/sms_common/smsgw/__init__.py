"""Shared code of the SMS gateway: shipped as the Lambda layer, installed editable for tests."""
