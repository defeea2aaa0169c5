#!/usr/bin/python3
"""An independent TFRecord / tf.train.Example / TensorBoard Event writer and reader for lth's
tests: Debian's python3-protobuf with the messages declared here (field numbers from
tensorflow/core/example/{example,feature}.proto and tensorflow/core/util/event.proto,
tensorflow/core/framework/summary.proto), plus TFRecord framing and CRC-32C in plain Python.
No TensorFlow and no lth code.

  tf_records.py write-examples OUT MANIFEST.json   # [{"image": path, "label": n, "file_name": s}]
  tf_records.py read-examples IN                   # JSON: [{"label", "file_name", "image_len", "image_crc"}]
  tf_records.py read-events IN                     # JSON: [{"step", "wall_time", "file_version", "scalars"}]
  tf_records.py write-events OUT                   # a version event and three scalar events
"""
import json
import struct
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def frame(record):
    header = struct.pack("<Q", len(record))
    return header + struct.pack("<I", masked(header)) + record + struct.pack("<I", masked(record))


def records(path):
    data = open(path, "rb").read()
    pos = 0
    while pos < len(data):
        if len(data) - pos < 12:
            raise SystemExit("%s: truncated header at %d" % (path, pos))
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if hcrc != masked(header):
            raise SystemExit("%s: bad length crc at %d" % (path, pos))
        end = pos + 12 + length
        if end + 4 > len(data):
            raise SystemExit("%s: truncated record at %d" % (path, pos))
        record = data[pos + 12:end]
        (dcrc,) = struct.unpack("<I", data[end:end + 4])
        if dcrc != masked(record):
            raise SystemExit("%s: bad data crc at %d" % (path, pos))
        yield record
        pos = end + 4


def _messages():
    fdp = descriptor_pb2.FileDescriptorProto(name="lth_test_tf.proto", package="tensorflow", syntax="proto3")

    def message(name, fields, oneof=None, parent=None):
        m = (parent.nested_type if parent else fdp.message_type).add(name=name)
        if oneof:
            m.oneof_decl.add(name=oneof)
        for fname, number, ftype, label, type_name, in_oneof in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
            if in_oneof:
                f.oneof_index = 0
        return m

    rep, opt = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    message("BytesList", [("value", 1, F.TYPE_BYTES, rep, None, False)])
    message("FloatList", [("value", 1, F.TYPE_FLOAT, rep, None, False)])
    message("Int64List", [("value", 1, F.TYPE_INT64, rep, None, False)])
    message("Feature", [("bytes_list", 1, F.TYPE_MESSAGE, opt, ".tensorflow.BytesList", True),
                        ("float_list", 2, F.TYPE_MESSAGE, opt, ".tensorflow.FloatList", True),
                        ("int64_list", 3, F.TYPE_MESSAGE, opt, ".tensorflow.Int64List", True)], oneof="kind")
    features = message("Features", [("feature", 1, F.TYPE_MESSAGE, rep, ".tensorflow.Features.FeatureEntry", False)])
    entry = message("FeatureEntry", [("key", 1, F.TYPE_STRING, opt, None, False),
                                     ("value", 2, F.TYPE_MESSAGE, opt, ".tensorflow.Feature", False)], parent=features)
    entry.options.map_entry = True
    message("Example", [("features", 1, F.TYPE_MESSAGE, opt, ".tensorflow.Features", False)])
    summary = message("Summary", [("value", 1, F.TYPE_MESSAGE, rep, ".tensorflow.Summary.Value", False)])
    message("Value", [("tag", 1, F.TYPE_STRING, opt, None, False),
                      ("simple_value", 2, F.TYPE_FLOAT, opt, None, True)], oneof="value", parent=summary)
    message("Event", [("wall_time", 1, F.TYPE_DOUBLE, opt, None, False),
                      ("step", 2, F.TYPE_INT64, opt, None, False),
                      ("file_version", 3, F.TYPE_STRING, opt, None, True),
                      ("summary", 5, F.TYPE_MESSAGE, opt, ".tensorflow.Summary", True)], oneof="what")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)

    def cls(name):
        d = pool.FindMessageTypeByName("tensorflow." + name)
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(d)
        return message_factory.MessageFactory(pool).GetPrototype(d)

    return cls("Example"), cls("Event")


Example, Event = _messages()


def main(argv):
    cmd = argv[1]
    if cmd == "write-examples":
        items = json.load(open(argv[3]))
        with open(argv[2], "wb") as out:
            for item in items:
                ex = Example()
                ex.features.feature["image"].bytes_list.value.append(open(item["image"], "rb").read())
                ex.features.feature["label"].int64_list.value.append(item["label"])
                ex.features.feature["file_name"].bytes_list.value.append(item["file_name"].encode())
                out.write(frame(ex.SerializeToString()))
    elif cmd == "read-examples":
        out = []
        for record in records(argv[2]):
            ex = Example()
            ex.ParseFromString(record)
            f = ex.features.feature
            image = f["image"].bytes_list.value[0]
            out.append({"label": f["label"].int64_list.value[0],
                        "file_name": f["file_name"].bytes_list.value[0].decode(),
                        "image_len": len(image), "image_crc": crc32c(image)})
        print(json.dumps(out))
    elif cmd == "read-events":
        out = []
        for record in records(argv[2]):
            ev = Event()
            ev.ParseFromString(record)
            out.append({"step": ev.step, "wall_time": ev.wall_time,
                        "file_version": ev.file_version if ev.WhichOneof("what") == "file_version" else None,
                        "scalars": {v.tag: v.simple_value for v in ev.summary.value}})
        print(json.dumps(out))
    elif cmd == "write-events":
        with open(argv[2], "wb") as out:
            ev = Event(wall_time=1700000000.5, file_version="brain.Event:2")
            out.write(frame(ev.SerializeToString()))
            for step, value in ((10, 0.25), (20, 0.5), (30, 0.75)):
                ev = Event(wall_time=1700000000.5 + step, step=step)
                v = ev.summary.value.add(tag="val/acc", simple_value=value)
                del v
                out.write(frame(ev.SerializeToString()))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
