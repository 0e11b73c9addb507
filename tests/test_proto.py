"""Datum / BlobProto serialize with Caffe's exact field numbers and wire types."""
import numpy as np

from digits_gan_plugin.proto import BlobProto, Datum


def test_datum_wire_format_uses_caffe_field_numbers():
    datum = Datum(channels=3, height=2, width=1, data=b"\x01\x02", label=7, encoded=True)
    # tag = field_number << 3 | wire_type (0 varint, 2 length-delimited)
    assert datum.SerializeToString() == bytes(
        [1 << 3, 3, 2 << 3, 2, 3 << 3, 1, 4 << 3 | 2, 2, 1, 2, 5 << 3, 7, 7 << 3, 1]
    )


def test_datum_float_data_is_field_6_unpacked_fixed32():
    datum = Datum(float_data=[1.5, -2.0])
    expected = b"".join(bytes([6 << 3 | 5]) + np.float32(value).tobytes() for value in (1.5, -2.0))
    assert datum.SerializeToString() == expected


def test_blobproto_packed_data_and_shape():
    blob = BlobProto(num=1, channels=1, height=1, width=2, data=[0.5, 2.0])
    blob.shape.dim.extend([1, 1, 1, 2])
    wire = blob.SerializeToString()
    packed = np.array([0.5, 2.0], dtype="<f4").tobytes()
    assert bytes([5 << 3 | 2, len(packed)]) + packed in wire
    assert bytes([7 << 3 | 2, 6, 1 << 3 | 2, 4, 1, 1, 1, 2]) in wire
    assert BlobProto.FromString(wire) == blob


def test_datum_encoded_defaults_to_false():
    assert Datum.FromString(b"").encoded is False
