"""Render + MIME build of personalised emails: Herald's sandboxed engine vs plain stdlib.

One email template (a <style> block, a greeting, a custom field, an #if, a #foreach over
3-5 order items with arithmetic, a personal unsubscribe link) is prepared the way
`template_create` does it (sanitised, text derived) without touching the database. Then N
recipients are personalised with `template_render` (engine, CSS inlining, preheader) and
each result is built into a multipart/alternative `email.mime` message and serialised.

The floor does the same work with Python string formatting on a pre-inlined copy of the
same HTML (no engine, no sandbox, no CSS inlining per message) and the same MIME build.
A breakdown shows where Herald's time goes (engine only, CSS inlining, MIME).
"""

import argparse
import os
import random
import time
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, make_msgid

HTML = """<style>
  .item td { padding: 4px 8px; border-bottom: 1px solid #eee; }
  .total { font-weight: bold; color: #c00; }
  h1 { font-family: Arial, sans-serif; color: #333; }
</style>
<h1>Hello $!contact.firstName,</h1>
<p>Thanks for shopping with us in $!contact.fields.city.</p>
#if($data.get('discount'))<p>Your next order: <b>$data.get('discount')</b> off.</p>#end
<table width="600" cellpadding="0" cellspacing="0">
#foreach($item in $data.get('items'))<tr class="item"><td>$item.get('name')</td>
<td>$item.get('qty') x $item.get('price')</td>
#set($line = $item.get('qty') * $item.get('price'))<td class="total">$line</td></tr>
#end</table>
<p><a href="$data.get('unsubscribe')">Unsubscribe</a></p>"""

FLOOR_HTML = """<html><head></head><body>
<h1 style="font-family: Arial, sans-serif; color: #333;">Hello {first_name},</h1>
<p>Thanks for shopping with us in {city}.</p>
{discount}<table width="600" cellpadding="0" cellspacing="0">
{rows}</table>
<p><a href="{unsubscribe}">Unsubscribe</a></p></body></html>"""
FLOOR_ROW = (
    '<tr class="item"><td style="padding: 4px 8px; border-bottom: 1px solid #eee;">{name}</td>\n'
    '<td style="padding: 4px 8px; border-bottom: 1px solid #eee;">{qty} x {price}</td>'
    '<td style="padding: 4px 8px; border-bottom: 1px solid #eee; font-weight: bold; '
    'color: #c00;">{line}</td></tr>\n'
)
FLOOR_TEXT = "Hello {first_name},\n\nThanks for shopping with us in {city}.\n{discount}{rows}\n"


def _recipients(count: int) -> list[tuple[dict, dict]]:
    rng = random.Random(4)
    products = ["Tea", "Cake", "Mug", "Spoon", "Jam", "Honey", "Bread"]
    people = []
    for n in range(count):
        contact = {
            "id": n,
            "firstName": f"Person{n}",
            "email": f"person{n}@example.com",
            "fields": {"city": rng.choice(["Kyiv", "Lviv", "Berlin", "Paris"])},
        }
        data = {
            "discount": "5%" if n % 3 == 0 else "",
            "items": [
                {
                    "name": rng.choice(products),
                    "qty": rng.randint(1, 4),
                    "price": rng.randint(2, 40),
                }
                for _ in range(rng.randint(3, 5))
            ],
            "unsubscribe": f"https://shop.example/u/{n}",
        }
        people.append((contact, data))
    return people


def _mime(subject: str, to: str, html: str, text: str) -> bytes:
    message = MIMEMultipart("alternative")
    message["Subject"] = subject
    message["From"] = formataddr(("Shop", "news@shop.example"))
    message["To"] = to
    message["Message-ID"] = make_msgid(domain="shop.example")
    message.attach(MIMEText(text, "plain", "utf-8"))
    message.attach(MIMEText(html, "html", "utf-8"))
    return message.as_bytes()


def _floor(people: list[tuple[dict, dict]]) -> int:
    size = 0
    for contact, data in people:
        rows = "".join(
            FLOOR_ROW.format(line=item["qty"] * item["price"], **item) for item in data["items"]
        )
        discount = data["discount"]
        values = {
            "first_name": contact["firstName"],
            "city": contact["fields"]["city"],
            "unsubscribe": data["unsubscribe"],
        }
        html = FLOOR_HTML.format(
            discount=f"<p>Your next order: <b>{discount}</b> off.</p>\n" if discount else "",
            rows=rows,
            **values,
        )
        text = FLOOR_TEXT.format(
            discount=f"Your next order: {discount} off.\n" if discount else "",
            rows="".join(f"{i['name']} {i['qty']} x {i['price']}\n" for i in data["items"]),
            **values,
        )
        subject = f"Your order, {contact['firstName']}"
        size += len(_mime(subject, contact["email"], html, text))
    return size


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:10,.0f} msg/s  ({seconds:6.2f} s)"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench render", description=__doc__)
    parser.add_argument("--count", type=int, default=20_000, help="recipients (default 20000)")
    options = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from templates.models import MessageTemplate
    from templates.sanitize import inline_css
    from templates.services import compiled, template_prepare, template_render

    template = MessageTemplate(
        name="Order follow-up",
        subject="Your order, $!contact.firstName",
        preheader="$!data.get('discount') off your next order",
        html=HTML,
    )
    template_prepare(template, text_given=False)  # sanitise + derive text, as on save
    people = _recipients(options.count)
    count = len(people)
    print(f"{count} personalised emails, {len(template.html)} chars of template HTML")

    started = time.perf_counter()
    herald_bytes = 0
    for contact, data in people:
        message = template_render(template=template, contact=contact, data=data)
        herald_bytes += len(_mime(message.subject, contact["email"], message.html, message.text))
    herald = time.perf_counter() - started

    started = time.perf_counter()
    floor_bytes = _floor(people)
    floor = time.perf_counter() - started

    # Breakdown of Herald's per-message work.
    html_template = compiled(template.html)
    started = time.perf_counter()
    rendered = [html_template.render(c, d, escape_html=True) for c, d in people]
    engine = time.perf_counter() - started
    started = time.perf_counter()
    for html in rendered:
        inline_css(html)
    inlining = time.perf_counter() - started
    started = time.perf_counter()
    for (contact, _), html in zip(people, rendered, strict=True):
        _mime("Subject", contact["email"], html, "text")
    mime = time.perf_counter() - started

    print(f"Herald  render + MIME      {_rate(count, herald)}  avg {herald_bytes // count} B")
    print(f"stdlib  str.format + MIME  {_rate(count, floor)}  avg {floor_bytes // count} B")
    print(f"ratio   Herald / stdlib    {floor / herald:10.2f} (1.00 = as fast as the floor)")
    print("breakdown (Herald, HTML body only):")
    print(f"  engine render            {_rate(count, engine)}")
    print(f"  css inlining             {_rate(count, inlining)}")
    print(f"  MIME build               {_rate(count, mime)}")
