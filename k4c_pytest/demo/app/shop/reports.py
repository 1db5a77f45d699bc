"""Sales reports of the demo shop."""

import subprocess


def export(month):
    # OS command injection: the month comes from the request
    return subprocess.check_output("pg_dump shop --table=sales_" + month, shell=True)
