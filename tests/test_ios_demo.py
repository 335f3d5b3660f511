"""ios_demo/, the SwiftUI sample, checked without a Mac or a Swift toolchain.

(HotDogKit, the sample's logic, is also compiled and tested with `swift build` / `swift test`
by `make test` where a Swift toolchain is found; these checks guard what Linux cannot build.)

- Every ``.swift`` file parses with tree-sitter-swift, without an ERROR or MISSING node.
- ``HotDogApp.xcodeproj/project.pbxproj`` (read with the ``pbxproj`` package) builds every
  Swift file of the app and the exported model, links the local HotDogKit package, and has
  sane settings (iOS 16, bundle id, usage descriptions, Swift version).
- HotDogKit stays Foundation-only, so its XCTest tests run with ``swift test`` anywhere.
- The app's isolation design: the classifier is an actor taking and giving Sendable values,
  and no source silences the concurrency checker.

tests/test_ios_demo_contract.py checks the names the Swift code relies on against an
exported model; the helpers that read Swift sources live here and are shared with it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IOS_DEMO = ROOT / "ios_demo"
APP = "HotDogApp"
APP_DIR = IOS_DEMO / APP
PBXPROJ = IOS_DEMO / f"{APP}.xcodeproj" / "project.pbxproj"
PACKAGE = "HotDogKit"
PACKAGE_DIR = IOS_DEMO / PACKAGE
MODEL_FILE = "HotDogClassifier.mlmodel"   # Xcode's generated class is named after it

NEEDS = "pip install -e '.[dev]' (tree-sitter, tree-sitter-swift, pbxproj)"


# --------------------------------------------------------------------------- Swift sources
def swift_files() -> list[Path]:
    """Every Swift source in ios_demo/, build folders aside."""
    return sorted(p for p in IOS_DEMO.rglob("*.swift")
                  if not any(part in (".build", ".swiftpm", "DerivedData") for part in p.parts))


@cache
def swift_parser():
    """A tree-sitter parser for Swift, or skip the test when the packages are missing."""
    tree_sitter = pytest.importorskip("tree_sitter", reason=f"needs tree-sitter: {NEEDS}")
    swift = pytest.importorskip("tree_sitter_swift", reason=f"needs tree-sitter-swift: {NEEDS}")
    return tree_sitter.Parser(tree_sitter.Language(swift.language()))


def parse_swift(source: bytes | str):
    return swift_parser().parse(source.encode() if isinstance(source, str) else source)


def walk(node):
    yield node
    for child in node.children:
        yield from walk(child)


def syntax_problems(source: bytes | str) -> list[str]:
    """'line:column: ...' for every ERROR node (text the grammar cannot place) and every
    MISSING node (a token the parser had to invent, e.g. a closing brace)."""
    problems = []
    for node in walk(parse_swift(source).root_node):
        line, col = node.start_point[0] + 1, node.start_point[1] + 1
        if node.is_missing:
            problems.append(f"{line}:{col}: missing {node.type!r}")
        elif node.type == "ERROR":
            text = node.text.decode("utf-8", "replace").strip().splitlines()
            problems.append(f"{line}:{col}: cannot parse {text[0][:60] if text else ''!r}")
    return problems


_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\r": "\r", "\\0": "\0", '\\"': '"', "\\'": "'", "\\\\": "\\"}


def string_value(node) -> str:
    """The value of a Swift string literal without interpolation."""
    if node.type == "raw_string_literal":
        m = re.fullmatch(r'(#+)"(.*)"\1', node.text.decode(), re.S)
        if not m or "\\" + m.group(1) + "(" in m.group(2):
            raise ValueError(f"not a constant raw string: {node.text.decode()}")
        return m.group(2)
    if node.type != "line_string_literal":
        raise ValueError(f"not a string literal: {node.type} {node.text.decode()!r}")
    out = []
    for child in node.children:
        text = child.text.decode()
        if child.type == "line_str_text":
            out.append(text)
        elif child.type == "str_escaped_char":
            if text not in _ESCAPES:
                raise ValueError(f"escape {text} not handled")
            out.append(_ESCAPES[text])
        elif child.type != '"':
            raise ValueError(f"not a constant string: {node.text.decode()!r}")
    return "".join(out)


def type_declarations(root, name: str) -> list:
    """class / struct / enum declarations called ``name``, nested ones included."""
    return [n for n in walk(root) if n.type == "class_declaration"
            and n.child_by_field_name("name") is not None and n.child_by_field_name("name").text.decode() == name]


def _single_type(path: Path, name: str):
    found = type_declarations(parse_swift(path.read_bytes()).root_node, name)
    assert len(found) == 1, f"{path.relative_to(ROOT)}: expected one declaration of {name}, found {len(found)}"
    return found[0]


def _members(path: Path, type_name: str, kind: str) -> list:
    """The direct members of kind ``kind`` (a tree-sitter node type) in the body of the type
    ``type_name`` in ``path``, in order."""
    body = _single_type(path, type_name).child_by_field_name("body")
    return [member for member in body.children if member.type == kind]


def string_constants(path: Path, type_name: str) -> dict[str, str]:
    """``static let name = "value"`` members of the type ``type_name`` in ``path``."""
    out = {}
    for member in _members(path, type_name, "property_declaration"):
        value = member.child_by_field_name("value")
        if value is not None and value.type in ("line_string_literal", "raw_string_literal"):
            name = member.child_by_field_name("name").text.decode()
            out[name] = string_value(value)
    return out


def enum_raw_values(path: Path, enum_name: str) -> dict[str, str]:
    """``case name = "raw"`` of the String enum ``enum_name`` in ``path``."""
    out = {}
    for entry in _members(path, enum_name, "enum_entry"):
        names = entry.children_by_field_name("name")
        raws = entry.children_by_field_name("raw_value")
        assert len(names) == len(raws), f"{enum_name}: give every case an explicit raw value"
        for name, raw in zip(names, raws):
            out[name.text.decode()] = string_value(raw)
    return out


def enum_cases(path: Path, enum_name: str) -> list[str]:
    """The case names of the enum ``enum_name`` in ``path``, in order, raw values or not."""
    return [name.text.decode() for entry in _members(path, enum_name, "enum_entry")
            for name in entry.children_by_field_name("name")]


def dictionary_constant(path: Path, property_name: str) -> dict[str, str]:
    """The ``[String: String]`` literal assigned to the property ``property_name``."""
    for node in walk(parse_swift(path.read_bytes()).root_node):
        if node.type == "property_declaration" and node.child_by_field_name("name").text.decode() == property_name:
            literal = node.child_by_field_name("value")
            assert literal is not None and literal.type == "dictionary_literal", property_name
            keys = literal.children_by_field_name("key")
            values = literal.children_by_field_name("value")
            return {string_value(k): string_value(v) for k, v in zip(keys, values, strict=True)}
    raise AssertionError(f"{path.relative_to(ROOT)} has no property {property_name}")


def called_names(path: Path) -> set[str]:
    """Names called as functions or initialisers in ``path``: ``Foo(...)`` gives Foo."""
    out = set()
    for node in walk(parse_swift(path.read_bytes()).root_node):
        if node.type == "call_expression" and node.children and node.children[0].type == "simple_identifier":
            out.add(node.children[0].text.decode())
    return out


def call_string_arguments(path: Path, callee: str) -> list[str]:
    """The string literal arguments of every call to ``callee`` (e.g. ``DisplayName.of``)."""
    out = []
    for node in walk(parse_swift(path.read_bytes()).root_node):
        if node.type == "call_expression" and node.children and node.children[0].text.decode() == callee:
            arguments = [a for part in node.children[1].children if part.type == "value_arguments"
                         for a in part.children if a.type == "value_argument"]
            for arg in arguments:
                value = arg.child_by_field_name("value")
                if value is not None and value.type == "line_string_literal":
                    out.append(string_value(value))
    return out


def imported_modules(path: Path) -> set[str]:
    root = parse_swift(path.read_bytes()).root_node
    return {n.text.decode().split()[-1] for n in root.children if n.type == "import_declaration"}


# --------------------------------------------------------------------------- (a) syntax
def test_the_sample_has_its_parts():
    assert (IOS_DEMO / "README.md").is_file()
    assert PBXPROJ.is_file()
    assert (PACKAGE_DIR / "Package.swift").is_file()
    assert list((PACKAGE_DIR / "Sources" / PACKAGE).glob("*.swift"))
    assert list((PACKAGE_DIR / "Tests" / f"{PACKAGE}Tests").glob("*.swift"))
    assert list(APP_DIR.glob("*.swift"))


@pytest.mark.parametrize("path", swift_files(), ids=lambda p: str(p.relative_to(IOS_DEMO)))
def test_swift_file_parses(path):
    problems = syntax_problems(path.read_bytes())
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("broken", [
    "struct A { func f() {",                                  # a brace never closed
    "func f( -> Int { return 1 }",                            # a parameter list never closed
    'let s = "unterminated\nlet t = 1',                       # a string never closed
    "let x = [1, 2,, 3]",                                     # a stray comma
    "enum E: String { case a = }",                            # a raw value missing
    "if let x { } else else { }",                             # a doubled keyword
])
def test_the_syntax_check_catches_broken_swift(broken):
    assert syntax_problems(broken), f"tree-sitter-swift accepted {broken!r}"


def test_the_syntax_check_passes_valid_swift():
    good = '''
    import SwiftUI
    @MainActor final class Model: ObservableObject {
        @Published private(set) var text = "a \\(1 + 1) \\"b\\""
        func run() async throws -> Int { try await Task.sleep(nanoseconds: 1); return [1, 2].map { $0 * 2 }.count }
    }
    struct V: View { var body: some View { Text("x").padding() } }
    '''
    assert syntax_problems(good) == []


def test_string_helpers_read_literals():
    root = parse_swift('let a = "x\\"y\\\\n"\nlet b = #"["a","b"]"#\nlet c = "\\(a)"\n').root_node
    values = [n.child_by_field_name("value") for n in walk(root) if n.type == "property_declaration"]
    assert string_value(values[0]) == 'x"y\\n'
    assert string_value(values[1]) == '["a","b"]'
    with pytest.raises(ValueError):
        string_value(values[2])


# --------------------------------------------------------------------------- (b) the Xcode project
@cache
def project():
    pbxproj = pytest.importorskip("pbxproj", reason=f"needs pbxproj: {NEEDS}")
    return pbxproj.XcodeProject.load(str(PBXPROJ))


def objects_of(isa: str) -> list:
    return list(project().objects.get_objects_in_section(isa))


def obj(ref):
    return project().objects[str(ref)]


def group_paths() -> dict[str, Path]:
    """Every file reference's path on disk (relative to ios_demo/), through its groups."""
    parent = {str(child): g for g in objects_of("PBXGroup") for child in g.children}
    out = {}
    for ref in objects_of("PBXFileReference"):
        if ref.sourceTree != "<group>":
            continue
        parts, node = [ref.path], ref
        while str(node.get_id()) in parent:
            node = parent[str(node.get_id())]
            assert node.sourceTree == "<group>", f"group {node.get_id()} is not relative to its parent"
            if "path" in node.get_keys():
                parts.append(node.path)
        out[str(ref.get_id())] = Path(*reversed(parts))
    return out


def app_target():
    targets = objects_of("PBXNativeTarget")
    assert [t.name for t in targets] == [APP], "one app target, HotDogApp"
    return targets[0]


def phase(isa: str):
    phases = [obj(p) for p in app_target().buildPhases if obj(p).isa == isa]
    assert len(phases) == 1, f"the app target needs one {isa}"
    return phases[0]


def phase_files(isa: str) -> list[Path]:
    paths = group_paths()
    out = []
    for build_file in phase(isa).files:
        ref = obj(build_file).fileRef if "fileRef" in obj(build_file).get_keys() else None
        if ref is not None:
            out.append(paths[str(ref)])
    return out


def build_settings(configuration: str) -> dict:
    """The app target's settings for ``configuration``, over the project's."""
    def settings(config_list) -> dict:
        [config] = [obj(c) for c in obj(config_list).buildConfigurations if obj(c).name == configuration]
        bs = config.buildSettings
        return {str(k): bs[k] for k in bs.get_keys()}

    root = project().objects[project().rootObject]
    return {**settings(root.buildConfigurationList), **settings(app_target().buildConfigurationList)}


def test_project_file_is_well_formed():
    text = PBXPROJ.read_text(encoding="utf-8")
    assert text.startswith("// !$*UTF8*$!\n")
    # pbxproj writes files the way Xcode does; a file it reproduces byte for byte has
    # Xcode's sections, order and quoting.
    assert repr(project()) + "\n" == text
    # XCLocalSwiftPackageReference (the linked HotDogKit) needs Xcode 15's format, objectVersion 60.
    assert project().objectVersion == "60"
    defined = re.findall(r"^\t\t([0-9A-Za-z]+) (?:/\*.*?\*/ )?= \{", text, re.M)
    assert all(re.fullmatch(r"[0-9A-F]{24}", i) for i in defined), "object IDs are 24 hex digits"
    assert len(defined) == len(set(defined)), "object IDs are unique"
    referenced = set(re.findall(r"\b[0-9A-F]{24}\b", text))
    assert referenced <= set(defined), f"dangling references: {sorted(referenced - set(defined))}"


def test_app_target():
    target = app_target()
    assert target.productType == "com.apple.product-type.application"
    assert obj(target.productReference).path == f"{APP}.app"
    assert obj(project().rootObject).targets == [target.get_id()]


def test_every_app_swift_file_is_compiled_and_the_model_too():
    sources = phase_files("PBXSourcesBuildPhase")
    assert sorted(p for p in sources if p.suffix == ".swift") == \
        sorted(p.relative_to(IOS_DEMO) for p in APP_DIR.glob("*.swift"))
    # A .mlmodel in Compile Sources is what makes Xcode generate the HotDogClassifier class.
    assert Path(APP, MODEL_FILE) in sources
    assert len(sources) == len(set(sources))
    assert Path(APP, MODEL_FILE) not in phase_files("PBXResourcesBuildPhase")


def test_file_references_point_at_files():
    paths = group_paths()
    for ref in objects_of("PBXFileReference"):
        if ref.sourceTree != "<group>":
            continue
        path = paths[str(ref.get_id())]
        if path.name == MODEL_FILE:
            assert ref.lastKnownFileType == "file.mlmodel"
            continue   # exported by `mlkit export`, not in git
        assert (IOS_DEMO / path).is_file(), f"the project references {path}, which does not exist"
        if path.suffix == ".swift":
            assert ref.lastKnownFileType == "sourcecode.swift"


def test_the_exported_model_stays_out_of_git():
    ignored = (IOS_DEMO / ".gitignore").read_text().splitlines()
    assert f"/{APP}/{MODEL_FILE}" in ignored
    # ... and a build without it stops with a message that says how to make it.
    [script] = [obj(p) for p in app_target().buildPhases if obj(p).isa == "PBXShellScriptBuildPhase"]
    assert f"${{SRCROOT}}/{APP}/{MODEL_FILE}" in script.shellScript
    assert f"mlkit export MODEL_DIR --coreml --output ios_demo/{APP}/{MODEL_FILE}" in script.shellScript
    assert app_target().buildPhases.index(script.get_id()) < \
        app_target().buildPhases.index(phase("PBXSourcesBuildPhase").get_id())


@pytest.mark.parametrize("configuration", ["Debug", "Release"])
def test_build_settings(configuration):
    s = build_settings(configuration)
    assert s["SDKROOT"] == "iphoneos"
    assert re.fullmatch(r"16\.\d+", s["IPHONEOS_DEPLOYMENT_TARGET"]), "iOS 16+ (PhotosPicker needs 16)"
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z0-9-]+){2,}", s["PRODUCT_BUNDLE_IDENTIFIER"])
    assert s["PRODUCT_NAME"] == "$(TARGET_NAME)"
    assert s["GENERATE_INFOPLIST_FILE"] == "YES"
    for key in ("INFOPLIST_KEY_NSCameraUsageDescription", "INFOPLIST_KEY_NSPhotoLibraryUsageDescription"):
        assert len(s.get(key, "")) >= 20, f"{key}: iOS ends the app at the first camera/library access without it"
    assert s["INFOPLIST_KEY_UIApplicationSceneManifest_Generation"] == "YES"
    assert s["INFOPLIST_KEY_UILaunchScreen_Generation"] == "YES"
    assert re.fullmatch(r"5(\.\d+)?", s["SWIFT_VERSION"])
    # Swift 6's data-race checks in Swift 5 mode (Xcode 15 builds it too): Xcode shows any
    # isolation mistake in the app sources, which the Linux toolchain cannot compile.
    assert s["SWIFT_STRICT_CONCURRENCY"] == "complete"
    assert set(s["TARGETED_DEVICE_FAMILY"].split(",")) <= {"1", "2"} and "1" in s["TARGETED_DEVICE_FAMILY"]
    assert s["CODE_SIGN_STYLE"] == "Automatic"
    assert "@executable_path/Frameworks" in s["LD_RUNPATH_SEARCH_PATHS"]
    assert s.get("COREML_CODEGEN_LANGUAGE", "Swift") == "Swift"
    # The model check reads a file it does not declare as an input.
    assert s["ENABLE_USER_SCRIPT_SANDBOXING"] == "NO"


def test_the_local_package_is_linked():
    [reference] = objects_of("XCLocalSwiftPackageReference")
    assert (IOS_DEMO / reference.relativePath) == PACKAGE_DIR
    assert obj(project().rootObject).packageReferences == [reference.get_id()]
    [product] = objects_of("XCSwiftPackageProductDependency")
    assert product.productName == PACKAGE
    assert app_target().packageProductDependencies == [product.get_id()]
    linked = [obj(f).productRef for f in phase("PBXFrameworksBuildPhase").files
              if "productRef" in obj(f).get_keys()]
    assert linked == [product.get_id()]
    # ... and the package declares that library product.
    assert re.search(rf'\.library\(name: "{PACKAGE}", targets: \["{PACKAGE}"\]\)',
                     (PACKAGE_DIR / "Package.swift").read_text())


# --------------------------------------------------------------------------- the Swift package
def test_package_layout():
    manifest = (PACKAGE_DIR / "Package.swift").read_text()
    assert re.match(r"// swift-tools-version:\s*5\.\d+", manifest)
    assert '.target(name: "HotDogKit")' in manifest
    assert re.search(r'\.testTarget\(name: "HotDogKitTests", dependencies: \["HotDogKit"\], '
                     r'resources: \[\.copy\("Resources"\)\]\)', manifest)
    assert (PACKAGE_DIR / "Tests" / "HotDogKitTests" / "Resources" / "exported_model.json").is_file()
    tests = list((PACKAGE_DIR / "Tests" / "HotDogKitTests").glob("*Tests.swift"))
    assert {p.stem for p in tests} >= {"VerdictTests", "DisplayNameTests", "ModelInfoTests", "ModelContractTests",
                                       "PredictionTests", "ImageOrientationTests", "AppLogicTests"}
    for path in tests:
        assert {"XCTest", "HotDogKit"} <= imported_modules(path), path.name


def test_package_is_foundation_only():
    """`swift test` must run on Linux and on a Mac without an iOS simulator."""
    for path in (PACKAGE_DIR / "Sources").rglob("*.swift"):
        assert imported_modules(path) <= {"Foundation"}, f"{path.name} imports {imported_modules(path)}"


def test_app_uses_the_package_and_vision():
    imports = set().union(*(imported_modules(p) for p in APP_DIR.glob("*.swift")))
    assert {"HotDogKit", "Vision", "CoreML", "SwiftUI", "PhotosUI"} <= imports
    classifier = APP_DIR / "PhotoClassifier.swift"
    assert {"VNCoreMLModel", "VNCoreMLRequest", "VNImageRequestHandler"} <= called_names(classifier)
    text = classifier.read_text()
    assert "orientation: photo.orientation" in text and "CGImagePropertyOrientation(image.imageOrientation)" in text
    assert "request.imageCropAndScaleOption = model.info.resizeMode.cropAndScale.visionOption" in text
    assert "Prediction(classifications:" in text


# --------------------------------------------------------------------------- isolation (Swift 6)
def declarations(path: Path) -> dict[str, str]:
    """Type name -> the text of its declaration up to the body (attributes and kind included)."""
    out = {}
    for node in walk(parse_swift(path.read_bytes()).root_node):
        if node.type in ("class_declaration", "protocol_declaration"):
            name = node.child_by_field_name("name")
            body = node.child_by_field_name("body")
            if name is not None and body is not None:
                out[name.text.decode()] = path.read_bytes()[node.start_byte:body.start_byte].decode()
    return out


def test_the_classifier_is_an_actor_that_takes_sendable_values():
    """What crosses from the main actor to the classifier is Sendable: an actor, a Sendable
    Photo in, Sendable HotDogKit values out; no escape hatch silences the checker."""
    decls = declarations(APP_DIR / "PhotoClassifier.swift")
    assert re.match(r"\s*actor PhotoClassifier\b", decls["PhotoClassifier"]), decls["PhotoClassifier"]
    assert re.search(r"struct Photo: Sendable\b", decls["Photo"])
    text = (APP_DIR / "PhotoClassifier.swift").read_text()
    assert re.search(r"func classify\(_ photo: Photo\) throws -> Prediction", text)
    assert re.search(r"func prepare\(\) throws -> ModelInfo", text)
    assert "DispatchQueue" not in text and "queue.async" not in text
    view_model = APP_DIR / "ClassifierViewModel.swift"
    assert re.search(r"@MainActor\s+final class ClassifierViewModel\b", declarations(view_model)["ClassifierViewModel"])
    assert "classifier.classify(input)" in view_model.read_text()
    assert "@escaping () async throws -> UIImage" not in view_model.read_text()
    for path in swift_files():
        source = path.read_text()
        for hatch in ("@unchecked Sendable", "nonisolated(unsafe)", "@preconcurrency", "assumeIsolated"):
            assert hatch not in source, f"{path.relative_to(ROOT)} uses {hatch}"
    # HotDogKit's values are Sendable, so the app can pass them between actors.
    kit = PACKAGE_DIR / "Sources" / PACKAGE
    for name, file in [("Prediction", "Verdict.swift"), ("Verdict", "Verdict.swift"),
                       ("Classification", "Verdict.swift"), ("ModelInfo", "ModelInfo.swift"),
                       ("ModelDescription", "ModelContract.swift"), ("ResultText", "ResultText.swift")]:
        assert "Sendable" in declarations(kit / file)[name], name


def test_orientation_mapping_lives_in_the_package():
    """The app turns UIImage.Orientation into CGImagePropertyOrientation through HotDogKit's
    ImageOrientation (tested there): raw value in, raw value out, no table of its own."""
    text = (APP_DIR / "ImageOrientation.swift").read_text()
    assert "ImageOrientation(uiImageOrientation: orientation.rawValue)" in text
    assert "CGImagePropertyOrientation(rawValue: $0.exifValue)" in text
    kit = PACKAGE_DIR / "Sources" / PACKAGE / "ImageOrientation.swift"
    # The same names as Apple's two enums (both name the same turns alike).
    assert enum_cases(kit, "ImageOrientation") == ["up", "upMirrored", "down", "downMirrored", "leftMirrored",
                                                    "right", "rightMirrored", "left"]
