"""k4c: compliance-as-code for Kubernetes security, as a pytest plugin."""

from k4c_pytest.outcomes import DataUnavailable, KindNotServed, NotApplicable, manual

__version__ = "0.1.0"

__all__ = ["DataUnavailable", "KindNotServed", "NotApplicable", "manual", "__version__"]
