"""Queries of the fixture shop, built by string formatting (SQL injection)."""


def find_user(cursor, name):
    cursor.execute("SELECT id, email FROM users WHERE name = '%s'" % name)
    return cursor.fetchone()
