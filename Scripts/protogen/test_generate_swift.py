#!/usr/bin/python3
"""Tests of the Swift generator (Scripts/protogen/generate_swift.py) without protoc-c: its naming rules, which must
match protoc-c's, and the errors it stops with. The generated output as a whole is checked by
Scripts/generate-protos.sh --check and by VPPProtoTests."""
import importlib.util
import os
import unittest

from google.protobuf import descriptor_pb2

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("generate_swift", os.path.join(HERE, "generate_swift.py"))
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)
FD = descriptor_pb2.FieldDescriptorProto


def file(name="vpp/v1/a.proto", package="vpp.v1", syntax="proto3"):
    f = descriptor_pb2.FileDescriptorProto(name=name, package=package, syntax=syntax)
    return f


def message(f, name, fields=()):
    m = f.message_type.add(name=name)
    for number, (field_name, kind, type_name) in enumerate(fields, 1):
        m.field.add(name=field_name, number=number, type=kind, label=FD.LABEL_OPTIONAL, type_name=type_name)
    return m


def model(*files):
    fds = descriptor_pb2.FileDescriptorSet()
    fds.file.extend(files)
    return gen.Model(fds, {f.name for f in files}, {f.name: set() for f in files})


class NamingTests(unittest.TestCase):
    def test_c_names_follow_protoc_c(self):
        self.assertEqual(gen.c_type_name("vpp.rpc.v1.KeyValue"), "Vpp__Rpc__V1__KeyValue")
        self.assertEqual(gen.c_type_name("vpp.v1.api_key"), "Vpp__V1__ApiKey")
        self.assertEqual(gen.c_function_prefix("vpp.rpc.v1.GoAway"), "vpp__rpc__v1__go_away")
        field = FD(name="default")
        self.assertEqual(gen.c_field_name(field), "default_", "C keywords get a trailing underscore")
        self.assertEqual(gen.c_field_name(FD(name="Serial")), "serial")

    def test_swift_names(self):
        self.assertEqual(gen.lower_camel("api_key"), "apiKey")
        self.assertEqual(gen.lower_camel("INVALID_ARGUMENT"), "invalidArgument")
        self.assertEqual(gen.lower_camel("already_camelCase"), "alreadyCamelCase")
        self.assertEqual(gen.upper_camel("page_token"), "PageToken")
        self.assertEqual(gen.upper_snake("AccountType"), "ACCOUNT_TYPE")
        self.assertEqual(gen.swift_identifier("default"), "`default`")
        self.assertEqual(gen.swift_identifier("self"), "self_")
        self.assertEqual(gen.swift_identifier("serial"), "serial")
        self.assertEqual(gen.namespace_for_package("vpp.rpc.v1", "x.proto"), "RpcV1")
        self.assertEqual(gen.swift_file_name("vpp/v1/catalog.proto"), "vpp_v1_catalog.swift")

    def test_doc_comments_keep_their_lines(self):
        self.assertEqual(gen.doc_comment(" First.\n\n Second.\n", "    "), "    /// First.\n    ///\n    /// Second.\n")
        self.assertEqual(gen.doc_comment("", ""), "")


class RefusalTests(unittest.TestCase):
    def assertRefused(self, fragment, *files, recursion=False):
        with self.assertRaises(gen.GenerationError) as raised:
            m = model(*files)
            if recursion:
                m.check_no_recursion()
        self.assertIn(fragment, str(raised.exception))

    def test_proto2_is_refused(self):
        self.assertRefused("only proto3 is supported", file(syntax="proto2"))

    def test_a_package_is_required(self):
        self.assertRefused("a package is required", file(package=""))

    def test_imports_from_outside_protos_are_refused(self):
        f = file()
        f.dependency.append("google/protobuf/timestamp.proto")
        self.assertRefused("which is not under Protos/", f)

    def test_map_fields_are_refused(self):
        f = file()
        m = message(f, "Labels")
        m.nested_type.add(name="EntriesEntry").options.map_entry = True
        self.assertRefused("map fields are not supported", f)

    def test_shadowing_a_runtime_type_is_refused(self):
        f = file()
        message(f, "ProtoMessage")
        self.assertRefused("would shadow VPPProto's own type ProtoMessage", f)

    def test_two_packages_on_one_namespace_are_refused(self):
        self.assertRefused("both map to the Swift namespace", file("a/v1/a.proto", "x.vpp.v1"), file("b/v1/b.proto", "y.vpp.v1"))

    def test_recursive_messages_are_refused(self):
        f = file()
        message(f, "Node", [("child", FD.TYPE_MESSAGE, ".vpp.v1.Node")])
        self.assertRefused("recursive message types are not supported: vpp.v1.Node -> vpp.v1.Node", f, recursion=True)

    def test_a_plain_file_is_accepted(self):
        f = file()
        message(f, "Page", [("page_token", FD.TYPE_STRING, ""), ("size", FD.TYPE_UINT32, "")])
        m = model(f)
        m.check_no_recursion()
        self.assertIn("vpp.v1.Page", m.messages)
        self.assertEqual(m.messages["vpp.v1.Page"].swift_name, "VppV1.Page")


class MemberwiseInitTests(unittest.TestCase):
    def test_every_field_in_order_with_its_default_and_a_oneof_once(self):
        f = file()
        message(f, "Item", [("name", FD.TYPE_STRING, "")])
        m = f.message_type.add(name="Page")
        m.field.add(name="page_token", number=1, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL)
        m.oneof_decl.add(name="target")
        m.field.add(name="user_id", number=2, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL, oneof_index=0)
        m.field.add(name="serial", number=3, type=FD.TYPE_STRING, label=FD.LABEL_OPTIONAL, oneof_index=0)
        m.field.add(name="items", number=4, type=FD.TYPE_MESSAGE, label=FD.LABEL_REPEATED, type_name=".vpp.v1.Item")
        m.field.add(name="first", number=5, type=FD.TYPE_MESSAGE, label=FD.LABEL_OPTIONAL, type_name=".vpp.v1.Item")
        model_ = model(f)
        generator = gen.FileGenerator(model_, f)
        info = model_.messages["vpp.v1.Page"]
        fields = [gen.Field(model_, info, fp) for fp in m.field]
        members = generator.memberwise(fields, generator.oneof_names(m, "vpp.v1.Page"), info)
        self.assertEqual(
            members,
            [
                ("pageToken", "Swift.String", '""'),
                ("target", "VppV1.Page.Target?", "nil"),
                ("items", "[VppV1.Item]", "[]"),
                ("first", "VppV1.Item?", "nil"),
            ],
        )

    def test_a_message_without_fields_has_no_second_init(self):
        f = file()
        m = message(f, "Empty")
        model_ = model(f)
        generator = gen.FileGenerator(model_, f)
        self.assertEqual(generator.memberwise([], [], model_.messages["vpp.v1.Empty"]), [])
        del m


if __name__ == "__main__":
    unittest.main()
