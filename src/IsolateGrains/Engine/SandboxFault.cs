namespace IsolateGrains.Engine;

/// <summary>
/// Thrown by an import to stop the guest (Wasmtime turns a host exception into a trap). It carries
/// what happened so that the host can say it, since the trap itself only says "host error".
/// </summary>
internal sealed class SandboxFault(string message) : Exception(message);

/// <summary>
/// Thrown by <c>__cxa_throw</c>/<c>__resumeException</c> to unwind the guest to the nearest
/// <c>invoke_*</c> import, which is how Emscripten implements C++ exceptions without the
/// WebAssembly exception-handling proposal.
/// </summary>
internal sealed class CxxUnwind(int exceptionPointer) : Exception("A C++ exception is unwinding the guest.")
{
    /// <summary>The thrown C++ exception object, in guest memory.</summary>
    public int ExceptionPointer { get; } = exceptionPointer;
}
