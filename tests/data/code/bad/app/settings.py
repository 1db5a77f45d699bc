"""Settings of the fixture shop (deliberately bad: a committed secret)."""

DEBUG = False
PAYMENT_API_SECRET = "K4C-CODE-CANARY-q7Zr2xW9pL4mT8vB"
