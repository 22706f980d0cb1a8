"""Shared code of the SMS gateway: shipped as the Lambda layer, installed editable for tests.

Records are frozen dataclasses. Those that nothing compares by value are declared `eq=False`: the
`__eq__` and `__hash__` a dataclass generates are code compiled at every cold start (a third of what
the package's own classes cost to import), for a comparison no caller makes.
"""
