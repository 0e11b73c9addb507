"""Caffe's ``Datum`` and ``BlobProto`` messages, built from their field numbers.

DIGITS stores every LMDB value as a serialized Caffe Datum and the dataset mean as a
BlobProto. We define the messages from a descriptor at import time instead of shipping
generated ``*_pb2`` code, so any protobuf runtime (3.x to 7.x) works and no protoc is
needed. Field numbers are those of caffe.proto and must never change.
"""
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _field(name, number, ftype, label=_F.LABEL_OPTIONAL, type_name=None, packed=False, default=None):
    field = _F(name=name, number=number, type=ftype, label=label)
    if type_name:
        field.type_name = type_name
    if packed:
        field.options.packed = True
    if default is not None:
        field.default_value = default
    return field


def _build():
    fdp = descriptor_pb2.FileDescriptorProto(
        name="digits_gan_caffe.proto", package="digits_gan_caffe", syntax="proto2"
    )
    rep = _F.LABEL_REPEATED
    fdp.message_type.add(name="BlobShape").field.extend(
        [_field("dim", 1, _F.TYPE_INT64, rep, packed=True)]
    )
    fdp.message_type.add(name="BlobProto").field.extend([
        _field("num", 1, _F.TYPE_INT32, default="0"),
        _field("channels", 2, _F.TYPE_INT32, default="0"),
        _field("height", 3, _F.TYPE_INT32, default="0"),
        _field("width", 4, _F.TYPE_INT32, default="0"),
        _field("data", 5, _F.TYPE_FLOAT, rep, packed=True),
        _field("diff", 6, _F.TYPE_FLOAT, rep, packed=True),
        _field("shape", 7, _F.TYPE_MESSAGE, type_name=".digits_gan_caffe.BlobShape"),
    ])
    fdp.message_type.add(name="Datum").field.extend([
        _field("channels", 1, _F.TYPE_INT32),
        _field("height", 2, _F.TYPE_INT32),
        _field("width", 3, _F.TYPE_INT32),
        _field("data", 4, _F.TYPE_BYTES),
        _field("label", 5, _F.TYPE_INT32),
        _field("float_data", 6, _F.TYPE_FLOAT, rep),
        _field("encoded", 7, _F.TYPE_BOOL, default="false"),
    ])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)

    def get(name):
        descriptor = pool.FindMessageTypeByName("digits_gan_caffe." + name)
        if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.21
            return message_factory.GetMessageClass(descriptor)
        return message_factory.MessageFactory(pool).GetPrototype(descriptor)

    return get("Datum"), get("BlobProto"), get("BlobShape")


Datum, BlobProto, BlobShape = _build()
