using Wasmtime;

namespace IsolateGrains.Engine;

/// <summary>
/// The exports of <c>dotnet.native.wasm</c> the host calls after boot, bound once per instance as
/// typed delegates (the fast path in Wasmtime's .NET binding).
/// </summary>
internal sealed class GuestExports
{
    /// <summary>Binds the exports of <paramref name="instance"/>; a missing export means the wrong module.</summary>
    public GuestExports(Instance instance)
    {
        Memory = instance.GetMemory("memory") ?? throw Missing("memory");
        Table = instance.GetTable("__indirect_function_table") ?? throw Missing("__indirect_function_table");
        Malloc = instance.GetFunction<int, int>("malloc") ?? throw Missing("malloc");
        Free = instance.GetAction<int>("free") ?? throw Missing("free");
        Memalign = instance.GetFunction<int, int, int>("emscripten_builtin_memalign") ?? throw Missing("emscripten_builtin_memalign");
        StackSave = instance.GetFunction<int>("stackSave") ?? throw Missing("stackSave");
        StackRestore = instance.GetAction<int>("stackRestore") ?? throw Missing("stackRestore");
        SetThrew = instance.GetAction<int, int>("setThrew") ?? throw Missing("setThrew");
        SetTempRet0 = instance.GetAction<int>("setTempRet0") ?? throw Missing("setTempRet0");
        CxaCanCatch = instance.GetFunction<int, int, int, int>("__cxa_can_catch") ?? throw Missing("__cxa_can_catch");
        CxaIsPointerType = instance.GetFunction<int, int>("__cxa_is_pointer_type") ?? throw Missing("__cxa_is_pointer_type");
        CxaIncrementRefcount = instance.GetAction<int>("__cxa_increment_exception_refcount") ?? throw Missing("__cxa_increment_exception_refcount");
        CxaDecrementRefcount = instance.GetAction<int>("__cxa_decrement_exception_refcount") ?? throw Missing("__cxa_decrement_exception_refcount");
        BackgroundExec = instance.GetAction("mono_background_exec") ?? throw Missing("mono_background_exec");
        ExecuteTimer = instance.GetAction("mono_wasm_execute_timer") ?? throw Missing("mono_wasm_execute_timer");
        InvokeJsExport = instance.GetAction<int, int>("mono_wasm_invoke_jsexport") ?? throw Missing("mono_wasm_invoke_jsexport");
    }

    /// <summary>The linear memory.</summary>
    public Memory Memory { get; }
    /// <summary>The indirect function table (for <c>invoke_vi</c>).</summary>
    public Table Table { get; }
    /// <summary><c>malloc</c>.</summary>
    public Func<int, int> Malloc { get; }
    /// <summary><c>free</c>.</summary>
    public Action<int> Free { get; }
    /// <summary><c>emscripten_builtin_memalign(alignment, size)</c>, used by <c>mmap</c>.</summary>
    public Func<int, int, int> Memalign { get; }
    /// <summary><c>stackSave</c>.</summary>
    public Func<int> StackSave { get; }
    /// <summary><c>stackRestore</c>.</summary>
    public Action<int> StackRestore { get; }
    /// <summary><c>setThrew</c>: tells the caller of an <c>invoke_*</c> that it unwound.</summary>
    public Action<int, int> SetThrew { get; }
    /// <summary><c>setTempRet0</c>: the second return value of <c>__cxa_find_matching_catch_*</c>.</summary>
    public Action<int> SetTempRet0 { get; }
    /// <summary><c>__cxa_can_catch(caughtType, thrownType, adjustedPointerAddress)</c>.</summary>
    public Func<int, int, int, int> CxaCanCatch { get; }
    /// <summary><c>__cxa_is_pointer_type</c>.</summary>
    public Func<int, int> CxaIsPointerType { get; }
    /// <summary><c>__cxa_increment_exception_refcount</c>.</summary>
    public Action<int> CxaIncrementRefcount { get; }
    /// <summary><c>__cxa_decrement_exception_refcount</c>.</summary>
    public Action<int> CxaDecrementRefcount { get; }
    /// <summary>Runs the work <c>schedule_background_exec</c> asked for.</summary>
    public Action BackgroundExec { get; }
    /// <summary>Runs the timer <c>mono_wasm_schedule_timer</c> asked for.</summary>
    public Action ExecuteTimer { get; }
    /// <summary><c>mono_wasm_invoke_jsexport(method, argument)</c>: calls a static managed method with one pointer.</summary>
    public Action<int, int> InvokeJsExport { get; }

    private static InvalidOperationException Missing(string name) =>
        new($"The WebAssembly module does not export '{name}': it is not the Mono runtime module IsolateGrains expects.");
}
