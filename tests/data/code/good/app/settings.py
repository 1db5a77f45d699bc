"""Settings of the fixture shop: secrets come from files mounted at run time."""

import os
from pathlib import Path

DEBUG = False


def payment_api_secret() -> str:
    return Path(os.environ.get("PAYMENT_SECRET_FILE", "/run/secrets/payment")).read_text().strip()
