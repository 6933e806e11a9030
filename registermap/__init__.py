"""Register maps: how a PLC's coils and registers become named, typed values.

Shared by the gateway (decode what it reads) and the simulators (encode what they
serve), so both sides of a test agree on one definition of every tag.
"""

from registermap.codec import decode, encode, register_count
from registermap.model import BIT_TABLES, ByteOrder, DataType, McTag, OpcUaTag, OpcUaType, Table, Tag, XgtTag

__all__ = ["BIT_TABLES", "ByteOrder", "DataType", "McTag", "OpcUaTag", "OpcUaType", "Table", "Tag", "XgtTag", "decode", "encode", "register_count"]
