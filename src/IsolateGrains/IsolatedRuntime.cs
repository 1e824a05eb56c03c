using IsolateGrains.Engine;

namespace IsolateGrains;

/// <summary>
/// One sandbox: a WebAssembly instance of the .NET runtime with its own memory, statics and objects,
/// and no access to the host's files, network, environment or processes. Lambdas passed to
/// <see cref="Invoke{TResult}(Func{TResult})"/> run inside it; the values they capture are copied in
/// with MessagePack, so nothing the sandbox does changes the host's objects.
/// </summary>
/// <remarks>
/// WebAssembly is single-threaded: one call runs at a time, and concurrent calls from several threads
/// wait their turn. If the sandbox itself fails (trap, deadline, memory limit), the call throws an
/// <see cref="IsolatedException"/> with <see cref="IsolatedException.IsFatal"/> set and the runtime
/// replaces the sandbox with a fresh one, so later calls work but earlier state is gone.
/// </remarks>
public sealed class IsolatedRuntime : IDisposable
{
    private readonly IsolatedRuntimeHost _host;
    private readonly SemaphoreSlim _turn = new(1, 1);
    private Sandbox _sandbox;
    private bool _disposed;

    /// <summary>Creates a sandbox from <paramref name="host"/>'s runtime image (well under a millisecond when warm).</summary>
    public IsolatedRuntime(IsolatedRuntimeHost host, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(host);
        _host = host;
        _sandbox = host.CreateSandbox(name);
        Name = _sandbox.Name;
    }

    /// <summary>The sandbox's name, as it appears in output and logs.</summary>
    public string Name { get; }

    /// <summary>How many times a fatal fault made the runtime start over with a fresh sandbox.</summary>
    public int ResetCount { get; private set; }

    /// <summary>The sandbox's current linear memory size in bytes.</summary>
    public long MemoryBytes => _sandbox.MemoryBytes;

    /// <summary>Runs <paramref name="action"/> inside the sandbox.</summary>
    public void Invoke(Action action) => InvokeCore(action);

    /// <summary>Runs <paramref name="func"/> inside the sandbox and returns a copy of its result.</summary>
    public TResult Invoke<TResult>(Func<TResult> func) => GuestRequests.Deserialize<TResult>(InvokeCore(func))!;

    private ReadOnlyMemory<byte>? InvokeCore(Delegate @delegate)
    {
        ArgumentNullException.ThrowIfNull(@delegate);
        return Call(sandbox =>
        {
            var request = GuestRequests.InvokeDelegate(@delegate, sandbox.KnownMethodKeys, out var key);
            var result = GuestRequests.ReadReply(sandbox.Call(request));
            sandbox.KnownMethodKeys.Add(key);
            return result;
        });
    }

    /// <summary>Runs <paramref name="body"/> on the sandbox, one call at a time; replaces the sandbox after a fatal fault.</summary>
    internal T Call<T>(Func<Sandbox, T> body)
    {
        _turn.Wait();
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            try
            {
                return body(_sandbox);
            }
            catch (IsolatedException e) when (e.IsFatal)
            {
                Reset();
                throw new IsolatedException(e.Message + " It was replaced by a fresh sandbox: state from earlier calls is gone.", e.InnerException)
                {
                    IsFatal = true,
                    SandboxWasReset = true,
                };
            }
        }
        finally
        {
            _turn.Release();
        }
    }

    private void Reset()
    {
        var failed = _sandbox;
        _sandbox = _host.CreateSandbox(Name);
        ResetCount++;
        failed.Dispose();
    }

    /// <summary>Releases the sandbox's memory.</summary>
    public void Dispose()
    {
        _turn.Wait();
        try
        {
            if (!_disposed)
            {
                _disposed = true;
                _sandbox.Dispose();
            }
        }
        finally
        {
            _turn.Release();
        }
    }
}
