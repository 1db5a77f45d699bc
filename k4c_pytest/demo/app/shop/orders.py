"""Orders of the demo shop: queries with parameters, templates with autoescaping."""

from jinja2 import Environment, PackageLoader, select_autoescape

templates = Environment(loader=PackageLoader("shop"), autoescape=select_autoescape())


def order(cursor, order_id):
    cursor.execute("SELECT id, total FROM orders WHERE id = %s", (order_id,))
    return cursor.fetchone()
