using Wasmtime;

namespace IsolateGrains.Engine.Imports;

/// <summary>
/// Process life and identity: abort and exit stop the guest with a fault that says so; the runtime's
/// log lines go to the host's trace; randomness comes from the host's CSPRNG; the guest sees no
/// environment variables and a process id of its own, never the host's.
/// </summary>
internal static class ProcessImports
{
    /// <summary>Defines the process imports.</summary>
    public static void Define(Linker linker)
    {
        linker.DefineFunction("env", "abort", (Caller caller) => Stop(caller, "The guest runtime aborted."));
        linker.DefineFunction("env", "exit", (Caller caller, int code) => Stop(caller, $"The guest runtime exited with code {code}."));
        linker.DefineFunction("env", "emscripten_force_exit", (Caller caller, int code) => Stop(caller, $"The guest runtime exited with code {code}."));
        linker.DefineFunction("env", "mono_wasm_trace_logger", (Caller caller, int domain, int level, int message, int fatal, int userData) =>
        {
            var sandbox = Sandbox.From(caller);
            var text = sandbox.ReadCString(message);
            if (fatal != 0)
            {
                // The runtime calls abort() next; keep its own words as the reason.
                sandbox.PendingFault ??= $"The guest runtime failed: {text}";
            }
            sandbox.Trace($"[{sandbox.ReadCString(domain)}:{sandbox.ReadCString(level)}] {text}");
        });
        linker.DefineFunction("env", "mono_wasm_browser_entropy", (Caller caller, int buffer, int length) =>
        {
            var sandbox = Sandbox.From(caller);
            sandbox.FillEntropy(sandbox.Span(buffer, length));
            return 0;
        });
        // A fixed id: the host's process id is not the guest's business.
        linker.DefineFunction("env", "mono_wasm_process_current_pid", () => 1);
        linker.DefineFunction("wasi_snapshot_preview1", "environ_sizes_get", (Caller caller, int count, int size) =>
        {
            var memory = Sandbox.From(caller).Exports.Memory;
            memory.WriteInt32(count, 0);
            memory.WriteInt32(size, 0);
            return 0;
        });
        linker.DefineFunction("wasi_snapshot_preview1", "environ_get", (int environ, int buffer) => 0);
    }

    private static void Stop(Caller caller, string reason)
    {
        var sandbox = Sandbox.From(caller);
        sandbox.PendingFault ??= reason;
        throw new SandboxFault(sandbox.PendingFault);
    }
}
