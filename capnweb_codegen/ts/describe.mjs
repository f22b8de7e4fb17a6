// Describes TypeScript interfaces for `python -m capnweb_codegen --from-ts`, with the TypeScript
// compiler's own type checker.
//
// Input (stdin, JSON):  {"files": ["/abs/api.ts", ...], "interfaces": ["Api", ...]}
// Output (stdout, JSON): {"typescript": version, "files": [base names], "roots": [names],
//                         "declarations": [...]}, or exit status 2 with a message on stderr.
//
// Each declaration is a capability (an interface, a class extending RpcTarget, an object type
// with methods: passed by reference), a data type (an object type without methods: passed by
// value) or an alias (a named union or enum). Types are plain JSON trees ({"k": "str"},
// {"k": "list", "item": T}, {"k": "ref", "name": "User"}...) that the Python side maps to
// annotations; whatever has no mapping is {"k": "any", "note": why}, never an error.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BUNDLED_CAPNWEB = path.join(HERE, "node_modules", "capnweb", "dist", "index.d.ts");

const TARGET_BRAND = "__RPC_TARGET_BRAND";
const STUB_BRAND = "__RPC_STUB_BRAND";

/** Built-in classes by name, as the types the Python side knows them by. */
const BUILTINS = new Map([
  ["Date", "Date"],
  ["Uint8Array", "Uint8Array"],
  ["Buffer", "Uint8Array"],
  ["ArrayBuffer", "TypedArray"],
  ["SharedArrayBuffer", "TypedArray"],
  ["ArrayBufferView", "TypedArray"],
  ["DataView", "TypedArray"],
  ["Int8Array", "TypedArray"],
  ["Uint8ClampedArray", "TypedArray"],
  ["Int16Array", "TypedArray"],
  ["Uint16Array", "TypedArray"],
  ["Int32Array", "TypedArray"],
  ["Uint32Array", "TypedArray"],
  ["Float32Array", "TypedArray"],
  ["Float64Array", "TypedArray"],
  ["BigInt64Array", "TypedArray"],
  ["BigUint64Array", "TypedArray"],
  ["URL", "URL"],
  ["Headers", "Headers"],
  ["Request", "Request"],
  ["Response", "Response"],
  ["Blob", "Blob"],
]);

/** Built-in stream classes: their chunk type is described, the stream is a stream. */
const STREAMS = new Map([
  ["ReadableStream", "readable"],
  ["WritableStream", "writable"],
]);

/** Built-in types that have no Python counterpart here, and why. */
const UNSUPPORTED = new Map([
  ["Map", "capnweb does not send a Map"],
  ["Set", "capnweb does not send a Set"],
  ["WeakMap", "capnweb does not send a WeakMap"],
  ["WeakSet", "capnweb does not send a WeakSet"],
  ["RegExp", "capnweb does not send a RegExp"],
  ["Symbol", "capnweb does not send a symbol"],
]);

const SKIPPED_NAME = /^(__@|__#|#|__RPC_)/;

function fail(message) {
  process.stderr.write(message + "\n");
  process.exit(2);
}

function pascal(name) {
  const words = String(name).split(/[^A-Za-z0-9]+/).filter(Boolean);
  return words.map(w => w[0].toUpperCase() + w.slice(1)).join("");
}

function main() {
  let request;
  try {
    request = JSON.parse(fs.readFileSync(0, "utf8"));
  } catch (e) {
    fail(`describe.mjs: bad request on stdin: ${e.message}`);
  }
  const out = describe(request.files.map(f => path.resolve(f)), request.interfaces ?? []);
  process.stdout.write(JSON.stringify(out, null, 1) + "\n");
}

function compilerOptions(files) {
  const options = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    allowImportingTsExtensions: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ["lib.es2023.d.ts", "lib.dom.d.ts", "lib.dom.iterable.d.ts", "lib.esnext.disposable.d.ts"],
  };
  // capnweb's declarations: the sources' own when they find one, else the copy installed here.
  const own = ts.resolveModuleName("capnweb", files[0], options, ts.sys).resolvedModule;
  if (!own && fs.existsSync(BUNDLED_CAPNWEB)) options.paths = { capnweb: [BUNDLED_CAPNWEB] };
  return options;
}

function describe(files, interfaces) {
  for (const f of files) {
    if (!fs.existsSync(f)) fail(`no such file: ${f}`);
  }
  const program = ts.createProgram(files, compilerOptions(files));
  const checker = program.getTypeChecker();
  const sources = files.map(f => {
    const sf = program.getSourceFile(f);
    if (!sf) fail(`cannot read ${path.basename(f)} as TypeScript (a .ts or .d.ts file)`);
    return sf;
  });
  const inputs = new Set(sources);

  for (const sf of sources) {
    for (const d of program.getSyntacticDiagnostics(sf)) {
      const { line, character } = sf.getLineAndCharacterOfPosition(d.start ?? 0);
      const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
      process.stderr.write(
        `warning: ${path.basename(sf.fileName)}:${line + 1}:${character + 1}: ${text}\n`,
      );
    }
  }

  // -- the top-level declarations of the input files, by name

  const named = new Map();
  for (const sf of sources) {
    for (const st of sf.statements) {
      if (
        (ts.isInterfaceDeclaration(st) ||
          ts.isClassDeclaration(st) ||
          ts.isTypeAliasDeclaration(st) ||
          ts.isEnumDeclaration(st)) &&
        st.name
      ) {
        const symbol = checker.getSymbolAtLocation(st.name);
        if (symbol && !named.has(st.name.text)) named.set(st.name.text, { symbol, node: st });
      }
    }
  }

  const isLibrary = sf => !inputs.has(sf) && sf.isDeclarationFile;
  const fromLibrary = symbol =>
    (symbol?.declarations ?? []).length > 0 &&
    symbol.declarations.every(d => isLibrary(d.getSourceFile()));
  const fromCapnweb = symbol =>
    (symbol?.declarations ?? []).some(d =>
      /[\\/]node_modules[\\/]capnweb[\\/]/.test(d.getSourceFile().fileName),
    );
  const hasTargetBrand = type => !!checker.getPropertyOfType(type, TARGET_BRAND);
  const text = type => checker.typeToString(type, undefined, ts.TypeFormatFlags.NoTruncation);

  function extendsRpcTarget(node) {
    const type = checker.getDeclaredTypeOfSymbol(checker.getSymbolAtLocation(node.name));
    if (hasTargetBrand(type)) return true;
    // capnweb's declarations were not found: go by the name of the base class
    return (node.heritageClauses ?? []).some(
      h =>
        h.token === ts.SyntaxKind.ExtendsKeyword &&
        h.types.some(t => t.expression.getText() === "RpcTarget"),
    );
  }

  // Capabilities by declaration: the requested interfaces and what RpcTarget classes implement.
  const forced = new Set();
  const roots = [];
  for (const name of interfaces) {
    const found = named.get(name);
    if (!found) {
      const known = [...named.keys()].sort().join(", ") || "none";
      fail(`no interface, class or type named ${name} in ${files.map(f => path.basename(f)).join(", ")} (found: ${known})`);
    }
    forced.add(found.symbol);
    roots.push(name);
  }
  for (const { symbol, node } of named.values()) {
    if (!ts.isClassDeclaration(node) || !extendsRpcTarget(node)) continue;
    forced.add(symbol);
    for (const h of node.heritageClauses ?? []) {
      if (h.token !== ts.SyntaxKind.ImplementsKeyword) continue;
      for (const t of h.types) {
        const s = checker.getSymbolAtLocation(t.expression);
        if (s) forced.add(s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
      }
    }
  }
  if (roots.length === 0) {
    // Every exported RpcTarget class and exported interface extending RpcTarget.
    for (const [name, { symbol, node }] of named) {
      const exported = (ts.getCombinedModifierFlags(node) & ts.ModifierFlags.Export) !== 0;
      if (!exported) continue;
      const type = checker.getDeclaredTypeOfSymbol(symbol);
      if (
        (ts.isClassDeclaration(node) && extendsRpcTarget(node)) ||
        (ts.isInterfaceDeclaration(node) && hasTargetBrand(type))
      ) {
        roots.push(name);
      }
    }
    roots.sort();
    if (roots.length === 0) {
      fail(
        `no exported class extending RpcTarget nor interface extending it in ${files.map(f => path.basename(f)).join(", ")}: name one with --interface`,
      );
    }
  }

  // -- declarations: one per capability, data type and named union

  const declarations = [];
  const byType = new Map();
  const taken = new Set();
  const queue = [];

  function uniqueName(base) {
    let name = base || "Anonymous";
    for (let n = 2; taken.has(name); n++) name = `${base}${n}`;
    taken.add(name);
    return name;
  }

  function shortName(type) {
    if (type.aliasSymbol) return type.aliasSymbol.name;
    if (type.flags & ts.TypeFlags.String) return "String";
    if (type.flags & ts.TypeFlags.Number) return "Number";
    if (type.flags & ts.TypeFlags.Boolean) return "Boolean";
    const s = type.getSymbol();
    if (s && !s.name.startsWith("__")) return s.name;
    return "";
  }

  function nameOf(type, hint) {
    if (type.aliasSymbol) {
      const args = (type.aliasTypeArguments ?? []).map(shortName).join("");
      return pascal(type.aliasSymbol.name) + pascal(args);
    }
    const s = type.getSymbol();
    if (s && !s.name.startsWith("__")) {
      let args = "";
      if (type.objectFlags & ts.ObjectFlags.Reference) {
        const count = type.target.typeParameters?.length ?? 0;
        args = checker.getTypeArguments(type).slice(0, count).map(shortName).join("");
      } else if (type.aliasSymbol) {
        args = (type.aliasTypeArguments ?? []).map(shortName).join("");
      }
      return pascal(s.name) + pascal(args);
    }
    return pascal(hint);
  }

  function declare(type, kind, hint, fill) {
    const known = byType.get(type);
    if (known) return { k: "ref", name: known.name };
    const name = uniqueName(nameOf(type, hint));
    const symbol = type.aliasSymbol ?? type.getSymbol();
    const doc = fromLibrary(symbol) ? null : docOf(symbol);
    const decl = { name, kind, doc, ts: text(type), source: sourceOf(symbol) };
    byType.set(type, decl);
    declarations.push(decl);
    queue.push(() => fill(decl));
    return { k: "ref", name };
  }

  function sourceOf(symbol) {
    const d = symbol?.declarations?.[0];
    if (!d) return "type";
    if (ts.isClassLike(d)) return "class";
    if (ts.isInterfaceDeclaration(d)) return "interface";
    if (ts.isEnumDeclaration(d)) return "enum";
    return "type";
  }

  function docOf(symbol) {
    if (!symbol) return null;
    const doc = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
    return doc || null;
  }

  function isCapability(type) {
    if (hasTargetBrand(type)) return true;
    const s = type.getSymbol();
    if (s && forced.has(s)) return true;
    if (type.aliasSymbol && forced.has(type.aliasSymbol)) return true;
    if (s && s.flags & ts.SymbolFlags.Class) return false;
    return checker.getPropertiesOfType(type).some(p => p.flags & ts.SymbolFlags.Method);
  }

  function isError(type) {
    const seen = new Set();
    const walk = t => {
      if (seen.has(t)) return false;
      seen.add(t);
      const s = t.getSymbol();
      if (s && s.name === "Error" && fromLibrary(s)) return true;
      if (t.isClassOrInterface?.() || t.objectFlags & ts.ObjectFlags.Reference) {
        const target = t.objectFlags & ts.ObjectFlags.Reference ? t.target : t;
        if (target.isClassOrInterface?.()) return (checker.getBaseTypes(target) ?? []).some(walk);
      }
      return false;
    };
    return walk(type);
  }

  function any(type, why) {
    return { k: "any", note: `${text(type)}: ${why}` };
  }

  const mapping = new Set();

  /** The JSON type of `type`; `hint` names an anonymous declaration, `self` is `this`. */
  function map(type, hint, self) {
    // Declarations are filled later, so only types written inline can come back here.
    if (mapping.has(type)) return any(type, "a type that contains itself");
    mapping.add(type);
    try {
      return mapOnce(type, hint, self);
    } catch (e) {
      return any(type, `the type could not be described (${e.message})`);
    } finally {
      mapping.delete(type);
    }
  }

  function mapOnce(type, hint, self) {
    const f = type.flags;
    if (f & ts.TypeFlags.Any) return { k: "any" };
    if (f & ts.TypeFlags.Unknown) return { k: "unknown" };
    if (f & ts.TypeFlags.Never) return any(type, "no value");
    if (f & ts.TypeFlags.Boolean) return { k: "bool" };
    if (f & ts.TypeFlags.Union) return union(type, hint, self);
    if (f & ts.TypeFlags.StringLiteral) return { k: "literal", value: type.value };
    if (f & ts.TypeFlags.NumberLiteral) {
      return Number.isInteger(type.value)
        ? { k: "literal", value: type.value }
        : { k: "float", note: `${text(type)}: not an integer, so not a Python Literal` };
    }
    if (f & ts.TypeFlags.BooleanLiteral) return { k: "literal", value: text(type) === "true" };
    if (f & ts.TypeFlags.BigIntLiteral) return { k: "bigint" };
    if (f & ts.TypeFlags.EnumLiteral) return union(type, hint, self);
    if (f & (ts.TypeFlags.String | ts.TypeFlags.TemplateLiteral | ts.TypeFlags.StringMapping)) {
      return { k: "str" };
    }
    if (f & ts.TypeFlags.Number) return { k: "float" };
    if (f & ts.TypeFlags.BigInt) return { k: "bigint" };
    if (f & ts.TypeFlags.Null) return { k: "null" };
    if (f & ts.TypeFlags.Undefined) return { k: "undefined" };
    if (f & ts.TypeFlags.Void) return { k: "void" };
    if (f & ts.TypeFlags.ESSymbolLike) return any(type, "capnweb does not send a symbol");
    if (f & ts.TypeFlags.TypeParameter) {
      if (type.isThisType && self) return self;
      const constraint = checker.getBaseConstraintOfType(type);
      if (constraint && !(constraint.flags & (ts.TypeFlags.Unknown | ts.TypeFlags.Any)) && constraint !== type) {
        return map(constraint, hint, self);
      }
      return any(type, "a type parameter the checker cannot resolve here");
    }
    if (f & ts.TypeFlags.Intersection) return intersection(type, hint, self);
    if (f & ts.TypeFlags.NonPrimitive) return any(type, "any object");
    if (f & ts.TypeFlags.Object) return object(type, hint, self);
    return any(type, "a type the checker cannot resolve");
  }

  function union(type, hint, self) {
    const s = type.getSymbol();
    const isEnum = s && s.flags & ts.SymbolFlags.Enum;
    const alias = type.aliasSymbol && !fromLibrary(type.aliasSymbol) ? type.aliasSymbol : null;
    const members = () => {
      const parts = type.flags & ts.TypeFlags.Union ? type.types : [type];
      const hasTrue = parts.some(t => t.flags & ts.TypeFlags.BooleanLiteral && text(t) === "true");
      const hasFalse = parts.some(t => t.flags & ts.TypeFlags.BooleanLiteral && text(t) === "false");
      const out = [];
      let bool = false;
      for (const t of parts) {
        if (t.flags & ts.TypeFlags.BooleanLiteral && hasTrue && hasFalse) {
          if (!bool) out.push({ k: "bool" });
          bool = true;
          continue;
        }
        out.push(map(t, hint, self));
      }
      return out.length === 1 ? out[0] : { k: "union", types: out };
    };
    if (isEnum || alias) {
      return declare(type, "alias", hint, decl => {
        decl.type = members();
      });
    }
    return members();
  }

  function intersection(type, hint, self) {
    // A branded primitive (`string & {__brand: "Id"}`) is the primitive.
    const primitive = type.types.find(t => t.flags & ts.TypeFlags.Primitive);
    if (primitive) return map(primitive, hint, self);
    if (type.types.every(t => t.flags & ts.TypeFlags.Object)) return object(type, hint, self);
    return any(type, "an intersection with no Python counterpart");
  }

  function object(type, hint, self) {
    const s = type.getSymbol();
    const alias = type.aliasSymbol;
    if (alias && alias.name === "RpcPromise" && fromCapnweb(alias)) {
      return map(type.aliasTypeArguments[0], hint, self);
    }
    if (s && (s.name === "Promise" || s.name === "PromiseLike") && fromLibrary(s)) {
      const args = checker.getTypeArguments(type);
      return args.length ? map(args[0], hint, self) : { k: "any" };
    }
    const stubBrand = checker.getPropertyOfType(type, STUB_BRAND);
    if (stubBrand) {
      const inner = checker.getTypeOfSymbol(stubBrand);
      if (inner.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return { k: "stub" };
      if (checker.getSignaturesOfType(inner, ts.SignatureKind.Call).length) {
        return map(inner, hint, self);
      }
      if (checker.getPropertiesOfType(inner).length === 0) return { k: "stub" };
      return capability(inner, hint);
    }
    if (checker.isArrayType(type)) {
      return { k: "list", item: map(checker.getTypeArguments(type)[0], hint + "Item", self) };
    }
    if (checker.isTupleType(type)) return tuple(type, hint, self);
    if (s && !s.name.startsWith("__") && fromLibrary(s)) {
      const builtin = BUILTINS.get(s.name);
      if (builtin) return { k: "builtin", name: builtin };
      const stream = STREAMS.get(s.name);
      if (stream) {
        const args = type.objectFlags & ts.ObjectFlags.Reference ? checker.getTypeArguments(type) : [];
        return { k: stream, item: args.length ? map(args[0], hint + "Chunk", self) : { k: "any" } };
      }
      if (s.name === "File") {
        return { k: "builtin", name: "Blob", note: `${text(type)}: sent as a Blob (its name and date are not)` };
      }
      if (isError(type)) return { k: "builtin", name: "Error" };
      const why = UNSUPPORTED.get(s.name);
      if (why) return any(type, why);
      if (s.name === "RpcTarget" && fromCapnweb(s)) return { k: "stub" };
      if (s.name === "Function" || s.name === "CallableFunction") return { k: "function", params: [], rest: true, returns: { k: "any" } };
      if (!checker.getSignaturesOfType(type, ts.SignatureKind.Call).length) {
        return any(type, "not a value capnweb carries");
      }
    }
    if (isError(type)) return { k: "builtin", name: "Error" };
    const calls = checker.getSignaturesOfType(type, ts.SignatureKind.Call);
    if (calls.length && checker.getPropertiesOfType(type).length === 0) {
      return fn(calls[calls.length - 1], hint, self);
    }
    if (s && s.flags & ts.SymbolFlags.Class && !isCapability(type)) {
      return any(type, `a class that does not extend RpcTarget: capnweb does not send its instances`);
    }
    if (isCapability(type)) return capability(type, hint);
    const props = checker.getPropertiesOfType(type).filter(p => !SKIPPED_NAME.test(p.name));
    const indexes = checker.getIndexInfosOfType(type);
    if (props.length === 0 && indexes.length) {
      return { k: "dict", value: map(indexes[0].type, hint + "Value", self) };
    }
    return declare(type, "data", hint, decl => {
      decl.fields = props.map(p => ({
        name: p.name,
        optional: (p.flags & ts.SymbolFlags.Optional) !== 0,
        doc: docOf(p),
        type: map(checker.getTypeOfSymbol(p), decl.name + pascal(p.name), undefined),
      }));
      decl.notes = indexes.map(
        i => `index signature [key: ${text(i.keyType)}]: ${text(i.type)}: not part of the TypedDict`,
      );
    });
  }

  function tuple(type, hint, self) {
    const flags = type.target.elementFlags;
    const items = checker.getTypeArguments(type).map((t, i) => ({
      type: map(t, `${hint}Item${i}`, self),
      kind: flags[i] & ts.ElementFlags.Required ? "required" : flags[i] & ts.ElementFlags.Optional ? "optional" : "rest",
    }));
    return { k: "tuple", items, ts: text(type) };
  }

  function fn(signature, hint, self) {
    const params = [];
    let rest = false;
    for (const p of signature.getParameters()) {
      const decl = p.valueDeclaration;
      if (decl && ts.isParameter(decl) && decl.dotDotDotToken) {
        rest = true;
        break;
      }
      params.push(map(checker.getTypeOfSymbol(p), hint + pascal(p.name), self));
    }
    const returns = map(checker.getReturnTypeOfSignature(signature), hint + "Result", self);
    return { k: "function", params, rest, returns };
  }

  function capability(type, hint) {
    return declare(type, "capability", hint, decl => {
      const self = { k: "ref", name: decl.name };
      decl.members = [];
      for (const p of checker.getPropertiesOfType(type)) {
        if (SKIPPED_NAME.test(p.name) || fromCapnweb(p)) continue;
        const mods = ts.getDeclarationModifierFlagsFromSymbol(p);
        if (mods & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
        decl.members.push(member(p, decl.name, self));
      }
    });
  }

  function member(p, owner, self) {
    const d = p.valueDeclaration ?? p.declarations?.[0];
    const base = { name: p.name, doc: docOf(p) };
    const hint = owner + pascal(p.name);
    if (p.flags & ts.SymbolFlags.GetAccessor) {
      return { ...base, kind: "property", type: map(checker.getTypeOfSymbol(p), hint, self) };
    }
    if (p.flags & ts.SymbolFlags.SetAccessor) {
      return { ...base, kind: "skipped", why: "a setter without a getter: not readable" };
    }
    if (d && (ts.isPropertyDeclaration(d) || ts.isParameter(d))) {
      return { ...base, kind: "skipped", why: "an instance property of the class: not reachable over RPC" };
    }
    const type = checker.getNonNullableType(checker.getTypeOfSymbol(p));
    const calls = checker.getSignaturesOfType(type, ts.SignatureKind.Call);
    if (!(p.flags & ts.SymbolFlags.Method) && (calls.length === 0 || checker.getPropertiesOfType(type).length)) {
      return { ...base, kind: "property", type: map(checker.getTypeOfSymbol(p), hint, self) };
    }
    if (calls.length === 0) return { ...base, kind: "skipped", why: "not callable" };
    const signature = calls[calls.length - 1];
    const notes = calls.length > 1 ? ["overloaded in TypeScript: the last signature is used"] : [];
    if (p.flags & ts.SymbolFlags.Optional) notes.push("optional in TypeScript");
    if (signature.getTypeParameters()?.length) notes.push("generic in TypeScript: type parameters become their constraints or Any");
    const params = [];
    for (const q of signature.getParameters()) {
      const qd = q.valueDeclaration;
      const rest = !!(qd && ts.isParameter(qd) && qd.dotDotDotToken);
      let qtype = checker.getTypeOfSymbol(q);
      if (rest && checker.isArrayType(qtype)) qtype = checker.getTypeArguments(qtype)[0];
      params.push({
        name: q.name,
        optional: !!(qd && ts.isParameter(qd) && checker.isOptionalParameter(qd)),
        rest,
        type: map(qtype, hint + pascal(q.name), self),
      });
    }
    const returns = map(checker.getReturnTypeOfSignature(signature), hint + "Result", self);
    return { ...base, doc: base.doc ?? docOf(signature), kind: "method", params, returns, notes };
  }

  const rootRefs = roots.map(name => {
    const { symbol } = named.get(name);
    const type = checker.getDeclaredTypeOfSymbol(symbol);
    const ref = capability(type, name);
    // The requested name, even for a generic or merged declaration.
    return ref.name;
  });
  while (queue.length) queue.shift()();

  return {
    typescript: ts.version,
    files: files.map(f => path.basename(f)),
    roots: rootRefs,
    declarations,
  };
}

main();
