"""One message out over SMTP: STARTTLS or implicit TLS with the server's certificate checked, login if configured."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from reportmail.content import Mail
from reportmail.settings import MailSettings


def message(mail: Mail, sender: str, recipients: tuple[str, ...], message_id_key: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = mail.subject, sender, ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False)
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "smartfactory.invalid"
    msg["Message-ID"] = make_msgid(idstring=message_id_key, domain=domain)
    msg.set_content(mail.text)
    for a in mail.attachments:
        maintype, subtype = a.mime.split("/", 1)
        msg.add_attachment(a.data, maintype=maintype, subtype=subtype, filename=a.filename)
    return msg


def send(settings: MailSettings, msg: EmailMessage) -> None:
    """Raises smtplib/OS errors; the caller records them and retries."""
    context = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    if settings.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_s, context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
    with client:
        client.ehlo()
        if settings.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if settings.username:
            client.login(settings.username, settings.password() or "")
        client.send_message(msg)
