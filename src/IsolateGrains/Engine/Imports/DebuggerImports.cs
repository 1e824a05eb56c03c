using Wasmtime;

namespace IsolateGrains.Engine.Imports;

/// <summary>
/// Hooks for the browser debugger. No debugger is ever attached to a sandbox, so they do nothing;
/// they can still be reached (assembly-load notifications), hence no-ops rather than faults.
/// </summary>
internal static class DebuggerImports
{
    /// <summary>Defines the debugger imports.</summary>
    public static void Define(Linker linker)
    {
        linker.DefineFunction("env", "mono_wasm_set_entrypoint_breakpoint", (int a) => { });
        linker.DefineFunction("env", "mono_wasm_debugger_log", (int a, int b) => { });
        linker.DefineFunction("env", "mono_wasm_asm_loaded", (int a, int b, int c, int d, int e) => { });
        linker.DefineFunction("env", "mono_wasm_add_dbg_command_received", (int a, int b, int c, int d) => { });
        linker.DefineFunction("env", "mono_wasm_fire_debugger_agent_message_with_data", (int a, int b) => { });
    }
}
