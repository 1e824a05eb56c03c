using Wasmtime;

namespace IsolateGrains.Engine.Imports;

/// <summary>
/// The event loop the JavaScript glue normally provides: the guest asks for background work and for
/// a timer, and the host runs them when it pumps after each call (see <see cref="Sandbox.Pump"/>).
/// Without this, <c>await</c>, <c>Task.Delay</c> and <c>Task.Run</c> never complete.
/// </summary>
internal static class EventLoopImports
{
    /// <summary>Defines the event-loop imports.</summary>
    public static void Define(Linker linker)
    {
        linker.DefineFunction("env", "schedule_background_exec", (Caller caller) => { Sandbox.From(caller).BackgroundWorkPending = true; });
        linker.DefineFunction("env", "mono_wasm_schedule_timer", (Caller caller, int milliseconds) =>
        {
            var sandbox = Sandbox.From(caller);
            sandbox.TimerDueMs = sandbox.MonotonicNowMs + Math.Max(0, milliseconds);
        });
    }
}
