#!/usr/bin/python3
"""Writes VPPProto's Swift types for the .proto files of a FileDescriptorSet.

Run by Scripts/generate-protos.sh (read Scripts/protogen/README.md); not meant to be run by hand. It reads the
descriptor set that protoc-c wrote (with --include_imports and --include_source_info) and writes, into --out:

  <path_with_underscores>.swift   one per .proto file: messages, enums, services, bridged to protoc-c's C structs
  ProtoRegistry.swift             the namespace enums of every package and ProtoRegistry.allMethods

The output depends only on the descriptor set and the protoc-c headers, so it is byte-identical across runs.
Anything the bridge does not support (proto2, `optional`, maps, groups, extensions, recursive messages,
client streaming, imports from outside Protos/) stops generation with an error that names the file and element.
"""

import argparse
import os
import re
import sys

from google.protobuf import descriptor_pb2

FD = descriptor_pb2.FieldDescriptorProto

GENERATOR = "Scripts/generate-protos.sh"


class GenerationError(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------------
# protoc-c's naming (protobuf-c 1.4, protoc-c/c_helpers.cc), so the Swift code names the C symbols it generated.
# ---------------------------------------------------------------------------------------------------------------

C_KEYWORDS = {
    "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch", "char", "class", "compl",
    "const", "const_cast", "continue", "default", "delete", "do", "double", "dynamic_cast", "else", "enum",
    "explicit", "extern", "false", "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable",
    "namespace", "new", "not", "not_eq", "operator", "or", "or_eq", "private", "protected", "public", "register",
    "reinterpret_cast", "return", "short", "signed", "sizeof", "static", "static_cast", "struct", "switch",
    "template", "this", "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using",
    "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq",
}


def c_to_camel(name):
    out, upper_next = [], True
    for ch in name:
        if ch == "_":
            upper_next = True
        elif upper_next:
            out.append(ch.upper())
            upper_next = False
        else:
            out.append(ch)
    return "".join(out)


def c_camel_to_lower(name):
    out, was_upper = [], True
    for ch in name:
        is_upper = ch.isupper()
        if is_upper:
            if not was_upper:
                out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
        was_upper = is_upper
    return "".join(out)


def c_type_name(full_name):
    """FullNameToC: vpp.rpc.v1.KeyValue -> Vpp__Rpc__V1__KeyValue."""
    return "__".join(c_to_camel(p) for p in full_name.split(".") if p)


def c_function_prefix(full_name):
    """FullNameToLower: vpp.rpc.v1.GoAway -> vpp__rpc__v1__go_away."""
    return "__".join(c_camel_to_lower(p) for p in full_name.split(".") if p)


def c_field_name(field):
    name = field.name.lower()
    return name + "_" if name in C_KEYWORDS else name


# ---------------------------------------------------------------------------------------------------------------
# Swift naming
# ---------------------------------------------------------------------------------------------------------------

SWIFT_KEYWORDS = {
    "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init", "inout",
    "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public", "rethrows",
    "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue", "default", "defer",
    "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return", "throw", "switch", "where",
    "while", "Any", "as", "await", "false", "is", "nil", "super", "throws", "true", "try", "consume", "copy",
    "borrowing", "consuming", "discard", "each", "some", "any", "package", "sending",
}
# Names that cannot follow a dot as a member (`x.self`, `E.Type`): these get a trailing underscore instead.
SWIFT_DOT_RESERVED = {"self", "Self", "Type", "Protocol", "init"}
# Members every generated message already has.
MESSAGE_RESERVED_MEMBERS = {"serializedBytes", "withSerialized", "protoMessageName", "hashValue", "hash"}
# Runtime types that a generated type must not shadow inside its namespace.
RUNTIME_TYPE_NAMES = {
    "ProtoMessage", "ProtoDecodingError", "ProtoMethod", "ProtoMethodInfo", "ProtoRegistry", "ProtoArena",
    "ProtoCBridged", "Swift", "VPPProto", "VPPProtoC", "CProtobufC",
}


def lower_camel(snake):
    """api_key -> apiKey, INVALID_ARGUMENT -> invalidArgument, already_camelCase -> alreadyCamelCase."""
    parts = [p for p in snake.split("_") if p]
    if not parts:
        return snake
    if snake.isupper() or all(p.isupper() or p.isdigit() for p in parts):
        parts = [p.lower() for p in parts]
    head = parts[0][0].lower() + parts[0][1:]
    return head + "".join(p[0].upper() + p[1:] for p in parts[1:])


def upper_camel(snake):
    camel = lower_camel(snake)
    return camel[0].upper() + camel[1:]


def upper_snake(camel):
    """AccountType -> ACCOUNT_TYPE."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", camel).upper()


def swift_identifier(name):
    if name in SWIFT_DOT_RESERVED:
        return name + "_"
    if name in SWIFT_KEYWORDS:
        return "`" + name + "`"
    return name


def namespace_for_package(package, file_name):
    if not package:
        raise GenerationError(f"{file_name}: a package is required (e.g. `package vpp.v1;`)")
    parts = package.split(".")[-2:]
    return "".join(upper_camel(p) for p in parts)


def doc_comment(comments, indent):
    """The proto's leading comment as a Swift `///` comment."""
    if not comments:
        return ""
    lines = comments.rstrip("\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    out = []
    for line in lines:
        line = line[1:] if line.startswith(" ") else line
        out.append(f"{indent}///" + (" " + line if line.strip() else ""))
    return "".join(o.rstrip() + "\n" for o in out)


# ---------------------------------------------------------------------------------------------------------------
# The model: every message and enum of the files being generated, by full proto name.
# ---------------------------------------------------------------------------------------------------------------

class EnumInfo:
    def __init__(self, proto, full_name, swift_name, file_name):
        self.proto = proto
        self.full_name = full_name
        self.swift_name = swift_name  # qualified: RpcV1.StatusCode
        self.c_type = c_type_name(full_name)
        self.file_name = file_name
        self.cases = []  # (swift case name, number, is first with that number)
        prefix = upper_snake(proto.name) + "_"
        seen_numbers, seen_names = set(), set()
        for value in proto.value:
            name = value.name
            if name.startswith(prefix) and len(name) > len(prefix) and name[len(prefix)].isalpha():
                name = name[len(prefix):]
            case = lower_camel(name)
            if case == "unrecognized":
                raise GenerationError(
                    f"{file_name}: enum {full_name} has a value {value.name} that would be named `unrecognized`, "
                    "which is reserved for unknown numbers; rename the value"
                )
            if case in seen_names:
                raise GenerationError(
                    f"{file_name}: enum {full_name}: two values map to the Swift case `{case}`; rename one"
                )
            seen_names.add(case)
            self.cases.append((swift_identifier(case), value.number, value.number not in seen_numbers))
            seen_numbers.add(value.number)
        if 0 not in seen_numbers:
            raise GenerationError(f"{file_name}: enum {full_name} has no value 0 (proto3 requires one)")


class MessageInfo:
    def __init__(self, proto, full_name, swift_name, file_name, top_level):
        self.proto = proto
        self.full_name = full_name
        self.swift_name = swift_name  # qualified: VppV1.Outer.Inner
        self.c_type = c_type_name(full_name)
        self.c_prefix = c_function_prefix(full_name)
        self.file_name = file_name
        self.top_level = top_level


class Model:
    def __init__(self, fds, generate_files, c_headers):
        self.files = {f.name: f for f in fds.file}
        self.generate_files = generate_files
        self.c_headers = c_headers  # file name -> set of identifiers in its protoc-c header
        self.messages = {}
        self.enums = {}
        self.namespaces = {}  # package -> namespace enum name
        for name in generate_files:
            if name not in self.files:
                raise GenerationError(f"{name}: not in the descriptor set")
            self._index_file(self.files[name])

    def _index_file(self, f):
        if f.syntax != "proto3":
            raise GenerationError(f"{f.name}: only proto3 is supported (found syntax {f.syntax or 'proto2'!r})")
        for dep in f.dependency:
            if dep not in self.generate_files:
                raise GenerationError(
                    f"{f.name}: imports {dep}, which is not under Protos/; only imports of Protos/ files are "
                    "supported (protoc-c output for it would not be in VPPProtoC)"
                )
        if f.extension:
            raise GenerationError(f"{f.name}: extensions are not supported")
        namespace = namespace_for_package(f.package, f.name)
        for package, other in self.namespaces.items():
            if other == namespace and package != f.package:
                raise GenerationError(
                    f"{f.name}: packages {package} and {f.package} both map to the Swift namespace {namespace}"
                )
        self.namespaces[f.package] = namespace
        for m in f.message_type:
            self._index_message(f, m, f.package, namespace, True)
        for e in f.enum_type:
            self._index_enum(f, e, f.package, namespace)

    def _check_type_name(self, f, name, full_name):
        if name in RUNTIME_TYPE_NAMES:
            raise GenerationError(f"{f.name}: {full_name} would shadow VPPProto's own type {name}; rename it")

    def _index_message(self, f, m, scope, swift_scope, top_level):
        full = f"{scope}.{m.name}"
        if m.options.map_entry:
            raise GenerationError(f"{f.name}: {scope}: map fields are not supported")
        if m.extension:
            raise GenerationError(f"{f.name}: {full}: extensions are not supported")
        self._check_type_name(f, m.name, full)
        swift = f"{swift_scope}.{swift_identifier(m.name)}"
        self.messages[full] = MessageInfo(m, full, swift, f.name, top_level)
        for nested in m.nested_type:
            if nested.options.map_entry:
                raise GenerationError(f"{f.name}: {full}: map fields are not supported")
            self._index_message(f, nested, full, swift, False)
        for e in m.enum_type:
            self._index_enum(f, e, full, swift)

    def _index_enum(self, f, e, scope, swift_scope):
        full = f"{scope}.{e.name}"
        self._check_type_name(f, e.name, full)
        self.enums[full] = EnumInfo(e, full, f"{swift_scope}.{swift_identifier(e.name)}", f.name)

    def require_c(self, file_name, identifier, what):
        if identifier not in self.c_headers[file_name]:
            raise GenerationError(
                f"{file_name}: expected protoc-c to declare {identifier} ({what}); the protoc-c naming rules in "
                "Scripts/protogen/generate_swift.py no longer match protoc-c's output"
            )

    def check_no_recursion(self):
        """protobuf-c recurses into nested messages without a depth limit, and Swift structs cannot contain
        themselves: a message must not contain itself through singular or repeated message fields."""
        graph = {
            name: sorted({fld.type_name.lstrip(".") for fld in info.proto.field if fld.type == FD.TYPE_MESSAGE})
            for name, info in self.messages.items()
        }
        state = {}

        def visit(name, path):
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                cycle = path[path.index(name):] + [name]
                raise GenerationError(
                    f"{self.messages[name].file_name}: recursive message types are not supported: "
                    + " -> ".join(cycle)
                )
            state[name] = "visiting"
            for child in graph.get(name, []):
                visit(child, path + [name])
            state[name] = "done"

        for name in sorted(graph):
            visit(name, [])


# ---------------------------------------------------------------------------------------------------------------
# Fields
# ---------------------------------------------------------------------------------------------------------------

SCALARS = {
    # proto type: (Swift type, C element type as Swift sees it, Swift default)
    FD.TYPE_INT32: ("Swift.Int32", "Swift.Int32", "0"),
    FD.TYPE_SINT32: ("Swift.Int32", "Swift.Int32", "0"),
    FD.TYPE_SFIXED32: ("Swift.Int32", "Swift.Int32", "0"),
    FD.TYPE_INT64: ("Swift.Int64", "Swift.Int64", "0"),
    FD.TYPE_SINT64: ("Swift.Int64", "Swift.Int64", "0"),
    FD.TYPE_SFIXED64: ("Swift.Int64", "Swift.Int64", "0"),
    FD.TYPE_UINT32: ("Swift.UInt32", "Swift.UInt32", "0"),
    FD.TYPE_FIXED32: ("Swift.UInt32", "Swift.UInt32", "0"),
    FD.TYPE_UINT64: ("Swift.UInt64", "Swift.UInt64", "0"),
    FD.TYPE_FIXED64: ("Swift.UInt64", "Swift.UInt64", "0"),
    FD.TYPE_FLOAT: ("Swift.Float", "Swift.Float", "0"),
    FD.TYPE_DOUBLE: ("Swift.Double", "Swift.Double", "0"),
}


class Field:
    def __init__(self, model, message, proto):
        self.model = model
        self.proto = proto
        where = f"{message.file_name}: {message.full_name}.{proto.name}"
        if proto.proto3_optional:
            raise GenerationError(f"{where}: `optional` fields are not supported; use a wrapper message")
        if proto.type == FD.TYPE_GROUP:
            raise GenerationError(f"{where}: groups are not supported")
        if proto.label == FD.LABEL_REQUIRED:
            raise GenerationError(f"{where}: required fields are not supported")
        self.repeated = proto.label == FD.LABEL_REPEATED
        self.in_oneof = proto.HasField("oneof_index")
        self.c_name = c_field_name(proto)
        if self.c_name in SWIFT_DOT_RESERVED:
            raise GenerationError(
                f"{where}: Swift cannot reach a C struct member named `{self.c_name}` (it means something else "
                "after a dot); rename the field"
            )
        swift_name = lower_camel(proto.name)
        if swift_name in MESSAGE_RESERVED_MEMBERS:
            raise GenerationError(f"{where}: the Swift property `{swift_name}` would clash with ProtoMessage; rename")
        self.swift_name = swift_identifier(swift_name)
        # For oneof cases: the bare name for `case .x(let v)`; same as the property name.
        t = proto.type
        self.kind = None
        if t in SCALARS:
            self.kind = "scalar"
            self.swift_type, self.c_element, self.default = SCALARS[t]
        elif t == FD.TYPE_BOOL:
            self.kind = "bool"
            self.swift_type, self.c_element, self.default = "Swift.Bool", "protobuf_c_boolean", "false"
        elif t == FD.TYPE_STRING:
            self.kind = "string"
            self.swift_type, self.default = "Swift.String", '""'
            self.c_element = "Swift.UnsafeMutablePointer<Swift.CChar>?"
        elif t == FD.TYPE_BYTES:
            self.kind = "bytes"
            self.swift_type, self.c_element, self.default = "[Swift.UInt8]", "ProtobufCBinaryData", "[]"
        elif t == FD.TYPE_ENUM:
            self.kind = "enum"
            self.enum = model.enums.get(proto.type_name.lstrip("."))
            if self.enum is None:
                raise GenerationError(f"{where}: enum {proto.type_name} is not defined in Protos/")
            self.swift_type, self.c_element = self.enum.swift_name, self.enum.c_type
            self.default = f"{self.enum.swift_name}()"
        elif t == FD.TYPE_MESSAGE:
            self.kind = "message"
            self.message = model.messages.get(proto.type_name.lstrip("."))
            if self.message is None:
                raise GenerationError(f"{where}: message {proto.type_name} is not defined in Protos/")
            self.swift_type = self.message.swift_name
            self.c_element = f"Swift.UnsafeMutablePointer<{self.message.c_type}>?"
            self.default = "nil"
        else:
            raise GenerationError(f"{where}: unsupported field type {t}")

    # The property's declared type and default.
    def property_type(self):
        if self.repeated:
            return f"[{self.swift_type}]"
        if self.kind == "message":
            return f"{self.swift_type}?"
        return self.swift_type

    def property_default(self):
        return "[]" if self.repeated else self.default

    # C value -> Swift value
    def decode_element(self, v):
        if self.kind == "scalar":
            return v
        if self.kind == "bool":
            return f"{v} != 0"
        if self.kind == "string":
            return f"_protoString({v})"
        if self.kind == "bytes":
            return f"_protoBytes({v})"
        if self.kind == "enum":
            return f"{self.enum.swift_name}(rawValue: Swift.Int32(truncatingIfNeeded: {v}.rawValue))"
        if self.kind == "message":
            return f"{v}.map {{ {self.message.swift_name}(_c: $0) }} ?? {self.message.swift_name}()"
        raise AssertionError(self.kind)

    # Swift value -> C value (allocating in `arena`)
    def encode_element(self, v):
        if self.kind == "scalar":
            return v
        if self.kind == "bool":
            return f"{v} ? 1 : 0"
        if self.kind == "string":
            return f"arena.cString({v})"
        if self.kind == "bytes":
            return f"arena.binaryData({v})"
        if self.kind == "enum":
            return f"{self.enum.c_type}(rawValue: .init(truncatingIfNeeded: {v}.rawValue))"
        if self.kind == "message":
            return f"{v}._cMessage(arena)"
        raise AssertionError(self.kind)


# ---------------------------------------------------------------------------------------------------------------
# Swift output
# ---------------------------------------------------------------------------------------------------------------

class Writer:
    def __init__(self):
        self.lines = []

    def line(self, text="", indent=0):
        self.lines.append(("    " * indent + text).rstrip() if text else "")

    def raw(self, text):
        for ln in text.splitlines():
            self.lines.append(ln)

    def text(self):
        # No double blank lines, exactly one trailing newline.
        out, blank = [], False
        for ln in self.lines:
            if ln == "" and blank:
                continue
            blank = ln == ""
            out.append(ln)
        while out and out[-1] == "":
            out.pop()
        return "\n".join(out) + "\n"


class FileGenerator:
    def __init__(self, model, file_proto):
        self.model = model
        self.f = file_proto
        self.namespace = model.namespaces[file_proto.package]
        self.comments = {}
        for loc in file_proto.source_code_info.location:
            if loc.leading_comments:
                self.comments[tuple(loc.path)] = loc.leading_comments
        self.w = Writer()

    def comment(self, path, indent):
        text = doc_comment(self.comments.get(tuple(path)), "    " * indent)
        if text:
            self.w.raw(text.rstrip("\n"))

    def generate(self):
        w, f = self.w, self.f
        w.line(f"// Generated by {GENERATOR} from Protos/{f.name}. DO NOT EDIT.")
        w.line("// swift-format-ignore-file")
        w.line()
        w.line("internal import CProtobufC")
        w.line("internal import VPPProtoC")
        for i, e in enumerate(f.enum_type):
            w.line()
            w.line(f"extension {self.namespace} {{")
            self.enum(e, f"{f.package}.{e.name}", [5, i], 1)
            w.line("}")
        for i, m in enumerate(f.message_type):
            w.line()
            w.line(f"extension {self.namespace} {{")
            self.message(m, f"{f.package}.{m.name}", [4, i], 1)
            w.line("}")
            w.line()
            self.bridge(m, f"{f.package}.{m.name}")
        for i, s in enumerate(f.service):
            w.line()
            w.line(f"extension {self.namespace} {{")
            self.service(s, [6, i], 1)
            w.line("}")
        return w.text()

    # -- enums --

    def enum(self, e, full, path, ind):
        w = self.w
        info = self.model.enums[full]
        name = swift_identifier(e.name)
        self.comment(path, ind)
        w.line(f"public enum {name}: Swift.Sendable, Swift.Hashable, Swift.CaseIterable {{", ind)
        for i, (case, number, _) in enumerate(info.cases):
            self.comment(path + [2, i], ind + 1)
            w.line(f"case {case}  // = {number}", ind + 1)
        w.line("/// A number this enum does not define (from a newer peer); re-encodes as the same number.", ind + 1)
        w.line("case unrecognized(Swift.Int32)", ind + 1)
        w.line()
        default_case = next(c for c, n, first in info.cases if n == 0 and first)
        w.line(f"/// The proto3 default, `.{default_case.strip('`')}`.", ind + 1)
        w.line(f"public init() {{ self = .{default_case.strip('`')} }}", ind + 1)
        w.line()
        w.line("public init(rawValue: Swift.Int32) {", ind + 1)
        w.line("switch rawValue {", ind + 2)
        for case, number, first in info.cases:
            if first:
                w.line(f"case {number}: self = .{case.strip('`')}", ind + 2)
        w.line("default: self = .unrecognized(rawValue)", ind + 2)
        w.line("}", ind + 2)
        w.line("}", ind + 1)
        w.line()
        w.line("public var rawValue: Swift.Int32 {", ind + 1)
        w.line("switch self {", ind + 2)
        for case, number, _ in info.cases:
            w.line(f"case .{case.strip('`')}: return {number}", ind + 2)
        w.line("case .unrecognized(let number): return number", ind + 2)
        w.line("}", ind + 2)
        w.line("}", ind + 1)
        w.line()
        w.line("/// Every defined case (not `.unrecognized`).", ind + 1)
        cases = ", ".join("." + c.strip("`") for c, _, _ in info.cases)
        w.line(f"public static let allCases: [{info.swift_name}] = [{cases}]", ind + 1)
        w.line("}", ind)

    # -- messages --

    def oneof_names(self, m, full):
        names = []
        for decl in m.oneof_decl:
            enum_name = upper_camel(decl.name)
            if enum_name in {n.name for n in m.nested_type} | {n.name for n in m.enum_type}:
                raise GenerationError(
                    f"{self.f.name}: {full}: oneof {decl.name} would be the Swift enum {enum_name}, which is also a "
                    "nested type; rename one"
                )
            names.append((swift_identifier(lower_camel(decl.name)), swift_identifier(enum_name)))
        return names

    @staticmethod
    def memberwise(fields, oneofs, info):
        """The memberwise initialiser's parameters: (name, type, default) per field, a oneof once, in field order."""
        members = []
        seen_oneofs = set()
        for field in fields:
            if field.in_oneof:
                index = field.proto.oneof_index
                if index in seen_oneofs:
                    continue
                seen_oneofs.add(index)
                prop, enum_name = oneofs[index]
                members.append((prop, f"{info.swift_name}.{enum_name}?", "nil"))
            else:
                members.append((field.swift_name, field.property_type(), field.property_default()))
        return members

    def message(self, m, full, path, ind):
        w = self.w
        info = self.model.messages[full]
        fields = [Field(self.model, info, fp) for fp in m.field]
        oneofs = self.oneof_names(m, full)
        self.comment(path, ind)
        w.line(f"public struct {swift_identifier(m.name)}: ProtoMessage {{", ind)
        w.line(f'public static let protoMessageName: Swift.String = "{full}"', ind + 1)
        emitted_oneofs = set()
        for i, field in enumerate(fields):
            if field.in_oneof:
                index = field.proto.oneof_index
                if index in emitted_oneofs:
                    continue
                emitted_oneofs.add(index)
                prop, enum_name = oneofs[index]
                w.line()
                self.comment(path + [8, index], ind + 1)
                w.line(f"public var {prop}: {info.swift_name}.{enum_name}? = nil", ind + 1)
                continue
            w.line()
            self.comment(path + [2, i], ind + 1)
            w.line(f"public var {field.swift_name}: {field.property_type()} = {field.property_default()}", ind + 1)
        for index, (prop, enum_name) in enumerate(oneofs):
            w.line()
            self.comment(path + [8, index], ind + 1)
            w.line(f"public enum {enum_name}: Swift.Sendable, Swift.Hashable {{", ind + 1)
            for i, field in enumerate(fields):
                if field.in_oneof and field.proto.oneof_index == index:
                    self.comment(path + [2, i], ind + 2)
                    w.line(f"case {field.swift_name}({field.swift_type})", ind + 2)
            w.line("}", ind + 1)
        for i, nested in enumerate(m.enum_type):
            w.line()
            self.enum(nested, f"{full}.{nested.name}", path + [4, i], ind + 1)
        for i, nested in enumerate(m.nested_type):
            w.line()
            self.message(nested, f"{full}.{nested.name}", path + [3, i], ind + 1)
        w.line()
        w.line("public init() {}", ind + 1)
        members = self.memberwise(fields, oneofs, info)
        if members:
            # Every field at once, in the .proto's order (a oneof where its first case is), each defaulted: a message
            # is one expression instead of a var and an assignment per field. `Message()` still means init().
            w.line()
            w.line("/// Every field at once; those left out keep their defaults.", ind + 1)
            w.line("public init(", ind + 1)
            for n, (name, type_, default) in enumerate(members):
                comma = "," if n < len(members) - 1 else ""
                w.line(f"{name}: {type_} = {default}{comma}", ind + 2)
            w.line(") {", ind + 1)
            for name, _, _ in members:
                w.line(f"self.{name} = {name}", ind + 2)
            w.line("}", ind + 1)
        w.line()
        w.line("public init(serializedBytes bytes: Swift.UnsafeRawBufferPointer) throws(ProtoDecodingError) {", ind + 1)
        w.line("self = try _protoDecode(Self.self, bytes)", ind + 2)
        w.line("}", ind + 1)
        w.line()
        w.line("public func withSerialized<R>(", ind + 1)
        w.line(
            "_ body: (_ size: Swift.Int, _ pack: (Swift.UnsafeMutableRawPointer) -> Swift.Void) throws -> R", ind + 2
        )
        w.line(") rethrows -> R {", ind + 1)
        w.line("try _protoWithSerialized(self, body)", ind + 2)
        w.line("}", ind + 1)
        w.line("}", ind)

    def bridge(self, m, full):
        """The internal conformance to ProtoCBridged: field-by-field copies between Swift and the C struct."""
        outer = self.w

        class Indented:
            def line(self, text="", indent=0):
                outer.line(text, indent + 1)

        w = Indented()
        info = self.model.messages[full]
        fields = [Field(self.model, info, fp) for fp in m.field]
        oneofs = self.oneof_names(m, full)
        fname = self.f.name
        self.model.require_c(fname, info.c_type, f"the struct of {full}")
        self.model.require_c(fname, f"{info.c_prefix}__init", f"the init function of {full}")
        for field in fields:
            self.model.require_c(fname, field.c_name, f"the C member of {full}.{field.proto.name}")

        outer.line(f"extension {info.swift_name}: ProtoCBridged {{")
        w.line(f"typealias CMessage = {info.c_type}")
        w.line()
        w.line(f"static func _cInit(_ c: Swift.UnsafeMutablePointer<{info.c_type}>) {{ {info.c_prefix}__init(c) }}")
        if info.top_level:
            for suffix in ("unpack", "free_unpacked", "get_packed_size", "pack"):
                self.model.require_c(fname, f"{info.c_prefix}__{suffix}", f"a function of {full}")
            ctype = info.c_type
            w.line()
            w.line("static func _cUnpack(")
            w.line("_ length: Swift.Int,", 1)
            w.line("_ data: Swift.UnsafePointer<Swift.UInt8>", 1)
            w.line(f") -> Swift.UnsafeMutablePointer<{ctype}>? {{")
            w.line(f"{info.c_prefix}__unpack(nil, length, data)", 1)
            w.line("}")
            w.line()
            w.line(f"static func _cFreeUnpacked(_ c: Swift.UnsafeMutablePointer<{ctype}>) {{")
            w.line(f"{info.c_prefix}__free_unpacked(c, nil)", 1)
            w.line("}")
            w.line()
            w.line(f"static func _cPackedSize(_ c: Swift.UnsafePointer<{ctype}>) -> Swift.Int {{")
            w.line(f"{info.c_prefix}__get_packed_size(c)", 1)
            w.line("}")
            w.line()
            w.line(
                f"static func _cPack(_ c: Swift.UnsafePointer<{ctype}>, _ out: Swift.UnsafeMutablePointer<Swift.UInt8>)"
                " -> Swift.Int {"
            )
            w.line(f"{info.c_prefix}__pack(c, out)", 1)
            w.line("}")

        # Decode: C struct -> Swift, every field at once.
        w.line()
        w.line(f"init(_c c: Swift.UnsafePointer<{info.c_type}>) {{")
        w.line("self.init()", 1)
        for field in fields:
            if field.in_oneof:
                continue
            member = f"c.pointee.{field.c_name}"
            if field.repeated:
                decode = field.decode_element("$0")
                w.line(f"self.{field.swift_name} = _protoArray(c.pointee.n_{field.c_name}, {member}) {{ {decode} }}", 1)
            elif field.kind == "message":
                w.line(f"self.{field.swift_name} = {member}.map {{ {field.message.swift_name}(_c: $0) }}", 1)
            else:
                w.line(f"self.{field.swift_name} = {field.decode_element(member)}", 1)
        for index, decl in enumerate(m.oneof_decl):
            prop, enum_name = oneofs[index]
            case_member = c_camel_to_lower(decl.name) + "_case"
            self.model.require_c(fname, case_member, f"the case member of oneof {full}.{decl.name}")
            w.line(f"switch c.pointee.{case_member}.rawValue {{", 1)
            for field in fields:
                if field.in_oneof and field.proto.oneof_index == index:
                    value = field.decode_element(f"c.pointee.{field.c_name}")
                    w.line(f"case {field.proto.number}: self.{prop} = .{field.swift_name.strip('`')}({value})", 1)
            w.line(f"default: self.{prop} = nil", 1)
            w.line("}", 1)
        w.line("}")

        # Encode: Swift -> C struct, every allocation in the arena.
        w.line()
        w.line(f"func _fill(_ c: inout {info.c_type}, _ arena: ProtoArena) {{")
        for field in fields:
            if field.in_oneof:
                continue
            target = f"c.{field.c_name}"
            value = f"self.{field.swift_name}"
            if field.repeated:
                encode = field.encode_element("$0")
                w.line(f"c.n_{field.c_name} = {value}.count", 1)
                w.line(f"{target} = arena.array({value}, of: {field.c_element}.self) {{ {encode} }}", 1)
            elif field.kind == "message":
                w.line(f"if let value = {value} {{ {target} = value._cMessage(arena) }}", 1)
            elif field.kind == "string":
                # The C default is protobuf-c's shared empty string; allocate only for a non-empty value.
                w.line(f"if !{value}.isEmpty {{ {target} = arena.cString({value}) }}", 1)
            elif field.kind == "bytes":
                w.line(f"if !{value}.isEmpty {{ {target} = arena.binaryData({value}) }}", 1)
            else:
                w.line(f"{target} = {field.encode_element(value)}", 1)
        for index, decl in enumerate(m.oneof_decl):
            prop, enum_name = oneofs[index]
            case_type = c_type_name(f"{full}.{decl.name}") + "Case"
            self.model.require_c(fname, case_type, f"the case enum of oneof {full}.{decl.name}")
            case_member = c_camel_to_lower(decl.name) + "_case"
            w.line(f"switch self.{prop} {{", 1)
            w.line("case nil: break", 1)
            for field in fields:
                if field.in_oneof and field.proto.oneof_index == index:
                    w.line(f"case .{field.swift_name.strip('`')}(let value)?:", 1)
                    w.line(f"c.{case_member} = {case_type}(rawValue: {field.proto.number})", 2)
                    w.line(f"c.{field.c_name} = {field.encode_element('value')}", 2)
            w.line("}", 1)
        w.line("}")
        outer.line("}")
        for nested in m.nested_type:
            outer.line()
            self.bridge(nested, f"{full}.{nested.name}")

    # -- services --

    def service(self, s, path, ind):
        w = self.w
        package = self.f.package
        service_full = f"{package}.{s.name}"
        self.comment(path, ind)
        w.line(f"public enum {swift_identifier(s.name)} {{", ind)
        w.line(f'public static let name: Swift.String = "{service_full}"', ind + 1)
        method_names = []
        for i, method in enumerate(s.method):
            where = f"{self.f.name}: {service_full}.{method.name}"
            if method.client_streaming:
                raise GenerationError(f"{where}: client streaming is not supported by the protocol")
            request = self.model.messages.get(method.input_type.lstrip("."))
            response = self.model.messages.get(method.output_type.lstrip("."))
            if request is None or response is None:
                raise GenerationError(f"{where}: request and response must be messages defined in Protos/")
            if method.name in ("name", "methods"):
                raise GenerationError(f"{where}: the method name clashes with the service's own members")
            name = swift_identifier(method.name)
            method_names.append(name)
            w.line()
            self.comment(path + [2, i], ind + 1)
            w.line(f"public enum {name}: ProtoMethod {{", ind + 1)
            w.line(f"public typealias Request = {request.swift_name}", ind + 2)
            w.line(f"public typealias Response = {response.swift_name}", ind + 2)
            w.line(f'public static let path: Swift.String = "/{service_full}/{method.name}"', ind + 2)
            streaming = "true" if method.server_streaming else "false"
            w.line(f"public static let isServerStreaming: Swift.Bool = {streaming}", ind + 2)
            w.line("public static let info = ProtoMethodInfo(", ind + 2)
            w.line(f'service: "{service_full}",', ind + 3)
            w.line(f'method: "{method.name}",', ind + 3)
            w.line(f'requestMessageName: "{request.full_name}",', ind + 3)
            w.line(f'responseMessageName: "{response.full_name}",', ind + 3)
            w.line(f"isServerStreaming: {streaming}", ind + 3)
            w.line(")", ind + 2)
            w.line("}", ind + 1)
        w.line()
        w.line("/// Every method of the service, in declaration order.", ind + 1)
        items = ", ".join(f"{n}.info" for n in method_names)
        w.line(f"public static let methods: [ProtoMethodInfo] = [{items}]", ind + 1)
        w.line("}", ind)


def generate_registry(model, files):
    w = Writer()
    w.line(f"// Generated by {GENERATOR} from every file in Protos/. DO NOT EDIT.")
    w.line("// swift-format-ignore-file")
    for package in sorted(model.namespaces):
        w.line()
        w.line(f"/// The Swift namespace of the protobuf package `{package}`.")
        w.line(f"public enum {model.namespaces[package]} {{}}")
    w.line()
    w.line("/// Every RPC method in Protos/, for routing tables and listings.")
    w.line("public enum ProtoRegistry {")
    w.line("/// Every method of every service, by file name, then in declaration order.", 1)
    services = []
    for name in files:
        f = model.files[name]
        for s in f.service:
            services.append(f"{model.namespaces[f.package]}.{swift_identifier(s.name)}.methods")
    if services:
        w.line("public static let allMethods: [ProtoMethodInfo] = Swift.Array([", 1)
        for i, s in enumerate(services):
            w.line(s + ("," if i < len(services) - 1 else ""), 2)
        w.line("].joined())", 1)
    else:
        w.line("public static let allMethods: [ProtoMethodInfo] = []", 1)
    w.line("}")
    return w.text()


def swift_file_name(proto_name):
    return re.sub(r"[^A-Za-z0-9]", "_", proto_name[: -len(".proto")]) + ".swift"


def header_identifiers(path):
    with open(path, encoding="utf-8") as h:
        return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", h.read()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--descriptor-set", required=True, help="FileDescriptorSet written by protoc-c")
    parser.add_argument("--c-include", required=True, help="directory holding the protoc-c headers (<path>.pb-c.h)")
    parser.add_argument("--out", required=True, help="directory for the Swift files")
    parser.add_argument("files", nargs="+", help="the .proto files to generate, relative to Protos/")
    args = parser.parse_args()

    fds = descriptor_pb2.FileDescriptorSet()
    with open(args.descriptor_set, "rb") as d:
        fds.ParseFromString(d.read())
    files = sorted(args.files)
    try:
        c_headers = {
            name: header_identifiers(os.path.join(args.c_include, name[: -len(".proto")] + ".pb-c.h"))
            for name in files
        }
        model = Model(fds, set(files), c_headers)
        model.check_no_recursion()
        outputs = {}
        for name in files:
            out_name = swift_file_name(name)
            if out_name in outputs or out_name == "ProtoRegistry.swift":
                raise GenerationError(f"{name}: its Swift file name {out_name} clashes with another generated file")
            outputs[out_name] = FileGenerator(model, model.files[name]).generate()
        outputs["ProtoRegistry.swift"] = generate_registry(model, files)
    except GenerationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    for out_name in sorted(outputs):
        with open(os.path.join(args.out, out_name), "w", encoding="utf-8", newline="\n") as out:
            out.write(outputs[out_name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
