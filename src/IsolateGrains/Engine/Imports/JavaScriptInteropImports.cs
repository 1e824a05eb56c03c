using Wasmtime;

namespace IsolateGrains.Engine.Imports;

/// <summary>
/// <c>[JSImport]</c>/<c>[JSExport]</c> interop, promises and browser locale data need a JavaScript
/// engine. A sandbox has none: reaching one of these stops the call with a fault that says so.
/// The console-clear request is harmless and ignored.
/// </summary>
internal static class JavaScriptInteropImports
{
    /// <summary>Defines the JavaScript interop imports.</summary>
    public static void Define(Linker linker)
    {
        linker.DefineFunction("env", "mono_wasm_bind_js_import_ST", (Caller caller, int a) => Unsupported<int>(caller, "JSImport binding"));
        linker.DefineFunction("env", "mono_wasm_invoke_jsimport_ST", (Caller caller, int a, int b) => { Unsupported<int>(caller, "JSImport calls"); });
        linker.DefineFunction("env", "mono_wasm_invoke_js_function", (Caller caller, int a, int b) => { Unsupported<int>(caller, "JavaScript functions"); });
        linker.DefineFunction("env", "mono_wasm_resolve_or_reject_promise", (Caller caller, int a) => { Unsupported<int>(caller, "JavaScript promises"); });
        linker.DefineFunction("env", "mono_wasm_cancel_promise", (Caller caller, int a) => { Unsupported<int>(caller, "JavaScript promises"); });
        linker.DefineFunction("env", "mono_wasm_release_cs_owned_object", (Caller caller, int a) => { Unsupported<int>(caller, "JavaScript object handles"); });
        linker.DefineFunction("env", "mono_wasm_get_locale_info", (Caller caller, int a, int b, int c, int d, int e, int f, int g) =>
            Unsupported<int>(caller, "browser locale data (sandboxes run with invariant globalization)"));
        linker.DefineFunction("env", "mono_wasm_console_clear", () => { });
    }

    private static T Unsupported<T>(Caller caller, string what)
    {
        var sandbox = Sandbox.From(caller);
        sandbox.PendingFault ??= $"The guest used {what}, which needs JavaScript and is not available in an IsolateGrains sandbox.";
        throw new SandboxFault(sandbox.PendingFault);
    }
}
