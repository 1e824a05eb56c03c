using Wasmtime;

namespace IsolateGrains.Engine.Imports;

/// <summary>
/// The jiterpreter compiles hot interpreter traces into new WebAssembly modules from JavaScript.
/// There is no JavaScript here, so boot turns it off with runtime options; these answers keep the
/// interpreter on its plain path if it asks anyway.
/// </summary>
internal static class JiterpreterImports
{
    /// <summary>Defines the jiterpreter imports.</summary>
    public static void Define(Linker linker)
    {
        // 1: "not jitted, do not ask again for this trace".
        linker.DefineFunction("env", "mono_interp_tier_prepare_jiterpreter", (int a, int b, int c, int d, int e, int f, int g, int h) => 1);
        linker.DefineFunction("env", "mono_interp_jit_wasm_entry_trampoline", (int a, int b, int c, int d, int e, int f, int g, int h) => 0);
        linker.DefineFunction("env", "mono_interp_invoke_wasm_jit_call_trampoline", (int a, int b, int c, int d, int e) => { });
        linker.DefineFunction("env", "mono_interp_jit_wasm_jit_call_trampoline", (int a, int b, int c, int d, int e) => { });
        linker.DefineFunction("env", "mono_interp_flush_jitcall_queue", () => { });
        linker.DefineFunction("env", "mono_interp_record_interp_entry", (int a) => { });
        linker.DefineFunction("env", "mono_wasm_free_method_data", (int a, int b, int c) => { });
    }
}
