"""Queries of the fixture shop, with parameters."""


def find_user(cursor, name):
    cursor.execute("SELECT id, email FROM users WHERE name = %s", (name,))
    return cursor.fetchone()
