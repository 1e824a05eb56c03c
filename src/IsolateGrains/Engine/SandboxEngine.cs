using IsolateGrains.Engine.Imports;
using Wasmtime;

namespace IsolateGrains.Engine;

/// <summary>
/// The Wasmtime engine shared by all sandboxes of a host, the one <see cref="Linker"/> that defines
/// every import (each callback finds its sandbox through the store's data), and the epoch ticker
/// that enforces CPU deadlines.
/// </summary>
internal sealed class SandboxEngine : IDisposable
{
    /// <summary>How often the epoch advances; a deadline is a number of these ticks.</summary>
    public const int EpochTickMilliseconds = 10;

    private readonly Timer _epochTicker;

    /// <summary>Creates the engine and the linker with all imports defined.</summary>
    public SandboxEngine()
    {
        using var config = new Config()
            .WithEpochInterruption(true)
            // Above the 2 MiB async stack Wasmtime aborts the whole process; 1 MiB is ample for Mono.
            .WithMaximumStackSize(1024 * 1024)
            .WithMemoryInitCopyOnWrite(true)
            .WithSIMD(true)
            .WithBulkMemory(true)
            .WithOptimizationLevel(OptimizationLevel.Speed);
        if (Environment.GetEnvironmentVariable("ISOLATEGRAINS_PERF_MAP") == "1")
        {
            // For profiling: Wasmtime writes /tmp/perf-<pid>.map, so Linux perf names the guest's compiled functions
            // (wasm[0]::function[N]; the runtime pack's dotnet.native.js.symbols names N).
            config.WithProfilingStrategy(ProfilingStrategy.PerfMap);
        }
        Engine = new Wasmtime.Engine(config);
        Linker = new Linker(Engine);
        DefineImports(Linker);
        _epochTicker = new Timer(static state => ((Wasmtime.Engine)state!).IncrementEpoch(), Engine, EpochTickMilliseconds, EpochTickMilliseconds);
    }

    /// <summary>The Wasmtime engine.</summary>
    public Wasmtime.Engine Engine { get; }

    /// <summary>The linker holding every import of <c>dotnet.native.wasm</c>.</summary>
    public Linker Linker { get; }

    /// <summary>Defines all 85 imports, grouped by concern.</summary>
    public static void DefineImports(Linker linker)
    {
        TimeImports.Define(linker);
        MemoryImports.Define(linker);
        ProcessImports.Define(linker);
        EventLoopImports.Define(linker);
        ExceptionImports.Define(linker);
        FileSystemImports.Define(linker);
        SocketImports.Define(linker);
        JiterpreterImports.Define(linker);
        JavaScriptInteropImports.Define(linker);
        DebuggerImports.Define(linker);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _epochTicker.Dispose();
        Linker.Dispose();
        Engine.Dispose();
    }
}
