"""A MiM SMS simulator for tests and the local stack (not shipped in the Lambda layer)."""

from mimsms_simulator.server import FAULTS, Account, Faults, MimSmsSimulator, ProviderState, SentSms, count_parts

__all__ = ["FAULTS", "Account", "Faults", "MimSmsSimulator", "ProviderState", "SentSms", "count_parts"]
