"""An embedded MQTT broker (amqtt) for the demo and for machines without mosquitto.

For production use mosquitto: it is faster and better proven. This broker exists so that
``smartfactory demo`` needs nothing installed. It requires the same accounts as mosquitto
(the files ``smartfactory broker-acl`` writes, or the plant database) and binds client ids
and topics the same way (cli/brokerauth.py), unless started with ``allow_anonymous``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def _guarded_broker_class():
    """amqtt's Broker, checking the login *before* the CONNECT touches any session.

    amqtt 0.12 applies a clean-session connect (deleting the session of that client id) and
    takes over a connected client of the same id before it looks at the password, so a
    wrong password under the collector's id would still end the collector's session. This
    subclass reads the CONNECT the same way, refuses a bad login with CONNACK "not
    authorised", and only then does what amqtt does with the session (the lines after the
    gate follow amqtt's ``Broker._initialize_client_session``).
    """
    from amqtt.broker import Broker
    from amqtt.errors import AMQTTError, MQTTError, NoDataError
    from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
    from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
    from amqtt.utils import gen_client_id

    class GuardedBroker(Broker):
        login_check: Callable[[str | None, str | None, str | None], bool] | None = None

        async def _initialize_client_session(self, reader, writer, remote_address, remote_port):
            try:
                handler, session = await BrokerProtocolHandler.init_from_connect(reader, writer, self.plugins_manager)
            except (AMQTTError, MQTTError, NoDataError) as exc:
                log.warning("broker_connect_invalid peer=%s:%s error=%r", remote_address, remote_port, str(exc))
                await writer.close()
                raise AMQTTError(exc) from exc
            check = type(self).login_check
            if check is not None and not check(session.username, session.password, session.client_id):
                await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
                await writer.close()
                raise AMQTTError(f"login refused for client id {session.client_id!r} from {remote_address}")
            if session.clean_session:
                if session.client_id:
                    await self._delete_session(session.client_id)
                else:
                    session.client_id = gen_client_id()
                session.parent = 0
            elif session.client_id in self._sessions:
                existing, _ = self._sessions[session.client_id]
                for name in ("will_flag", "will_message", "will_topic", "will_qos", "keep_alive", "username",
                             "password"):
                    setattr(existing, name, getattr(session, name))
                session = existing
                session.parent = 1
            else:
                session.parent = 0
            delay = self.config.get("timeout-disconnect-delay", 0)
            if session.keep_alive > 0 and isinstance(delay, int):
                session.keep_alive += delay
            return handler, session

    return GuardedBroker


def broker_config(host: str, port: int, *, allow_anonymous: bool = False, password_file: str | None = None,
                  acl_file: str | None = None, plant_url: str | None = None) -> dict:
    """amqtt's configuration: anonymous (demo), or the accounts of the files or the plant database."""
    plugins: dict[str, dict[str, object]]
    if allow_anonymous:
        plugins = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
    else:
        if not plant_url and not (password_file and acl_file):
            raise ValueError("the embedded broker needs accounts: --password-file and --acl-file (written by "
                             "smartfactory broker-acl) or -c CONFIG (the plant database), or --allow-anonymous "
                             "for a demo")
        source: dict[str, object] = {"password_file": password_file, "acl_file": acl_file, "plant_url": plant_url}
        plugins = {"cli.brokerauth.AccountAuthPlugin": source, "cli.brokerauth.AccountTopicPlugin": source}
    return {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}}, "sys_interval": 0,
            "plugins": plugins}


async def run_broker(host: str, port: int, ready: asyncio.Event | None = None, *, allow_anonymous: bool = False,
                     password_file: str | None = None, acl_file: str | None = None,
                     plant_url: str | None = None) -> None:
    config = broker_config(host, port, allow_anonymous=allow_anonymous, password_file=password_file,
                           acl_file=acl_file, plant_url=plant_url)
    cls = _guarded_broker_class()
    if not allow_anonymous:
        from cli.brokerauth import _Source, check_login

        source = _Source.get(password_file, acl_file, plant_url)  # raises now if the accounts cannot be read
        cls = type("AccountBroker", (cls,), {
            "login_check": staticmethod(lambda u, p, c: check_login(source.load(), u, p, c))})
    broker = cls(config)
    await broker.start()
    if allow_anonymous:
        log.warning("broker_listening address=%s:%d kind=embedded-amqtt ANONYMOUS: any client may connect, publish "
                    "and subscribe to anything (demo only)", host, port)
    else:
        log.info("broker_listening address=%s:%d kind=embedded-amqtt accounts=%s", host, port,
                 "plant database" if plant_url else f"{password_file}, {acl_file}")
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()
