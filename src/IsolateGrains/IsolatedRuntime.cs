using System.Buffers;
using IsolateGrains.Callbacks;
using IsolateGrains.Engine;
using IsolateGrains.Protocol;
using MessagePack;
using Microsoft.Extensions.Logging;

namespace IsolateGrains;

/// <summary>
/// One sandbox: a WebAssembly instance of the .NET runtime with its own memory, statics and objects,
/// and no access to the host's files, network, environment or processes. Lambdas passed to
/// <see cref="Invoke{TResult}(Func{TResult})"/> run inside it; the values they capture are copied in
/// with MessagePack, so nothing the sandbox does changes the host's objects.
/// </summary>
/// <remarks>
/// WebAssembly is single-threaded: one call runs at a time, and concurrent calls from several threads
/// wait their turn. Asynchronous guest code works like a JavaScript engine's: while a call awaits (a
/// timer, an asynchronous host callback), other calls may run in the sandbox between its steps. If the
/// sandbox itself fails (trap, deadline, memory limit), the call throws an <see cref="IsolatedException"/>
/// with <see cref="IsolatedException.IsFatal"/> set and the runtime replaces the sandbox with a fresh
/// one, so later calls work but earlier state (and every <see cref="IsolatedObject"/>) is gone.
/// </remarks>
public sealed partial class IsolatedRuntime : IDisposable
{
    private readonly IsolatedRuntimeHost _host;
    private readonly SemaphoreSlim _turn = new(1, 1);
    private readonly CallbackRegistry _callbacks;
    private readonly ILogger _logger;
    private Sandbox _sandbox;
    private int _callbackThread;
    private bool _disposed;

    /// <summary>Creates a sandbox from <paramref name="host"/>'s runtime image (well under a millisecond when warm).</summary>
    public IsolatedRuntime(IsolatedRuntimeHost host, string? name = null) : this(host, name, warmStart: true)
    {
    }

    /// <summary>Creates a sandbox, from the host's warm-start template if <paramref name="warmStart"/> (else from the bare image, as a snapshot needs).</summary>
    private IsolatedRuntime(IsolatedRuntimeHost host, string? name, bool warmStart)
    {
        ArgumentNullException.ThrowIfNull(host);
        _host = host;
        _logger = host.Logger;
        _callbacks = new CallbackRegistry(_logger);
        _sandbox = host.CreateSandbox(name, HandleGuestRequest, warmStart);
        Name = _sandbox.Name;
    }

    /// <summary>The sandbox's name, as it appears in output and logs.</summary>
    public string Name { get; }

    /// <summary>How many times a fatal fault made the runtime start over with a fresh sandbox.</summary>
    public int ResetCount { get; private set; }

    /// <summary>The sandbox's current linear memory size in bytes.</summary>
    public long MemoryBytes => _sandbox.MemoryBytes;

    /// <summary>
    /// Where work the runtime starts by itself runs: pumping the guest's timers and delivering the results
    /// of asynchronous host callbacks. An Orleans grain sets its activation's scheduler here, so that guest
    /// code and the grain calls it makes stay in the grain's context.
    /// </summary>
    internal TaskScheduler Scheduler { get; set; } = TaskScheduler.Default;

    /// <summary>Starts <paramref name="work"/> on <see cref="Scheduler"/>.</summary>
    private void RunOnScheduler(Func<Task> work) =>
        _ = Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, Scheduler).Unwrap();

    /// <summary>The current sandbox (tests).</summary>
    internal Sandbox SandboxForTests => _sandbox;

    /// <summary>The system pages of linear memory this sandbox has written (diagnostics).</summary>
    internal unsafe List<int> WrittenPagesForDiagnostics() =>
        Engine.Snapshots.PageMap.FindWrittenPages(_sandbox.Exports.Memory.GetPointer(), _sandbox.MemoryBytes, Engine.Snapshots.PageMap.SystemPageSize) ?? [];

    /// <summary>The host this runtime was created from.</summary>
    public IsolatedRuntimeHost Host => _host;

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
            if (sandbox.KnownMethodKeys.Add(key))
            {
                _host.Learned(GuestRequests.MethodToPrepare(@delegate));
            }
            return result;
        });
    }

    /// <summary>Runs <paramref name="body"/> on the sandbox, one call at a time; replaces the sandbox after a fatal fault.</summary>
    internal T Call<T>(Func<Sandbox, T> body)
    {
        ThrowIfCalledFromOwnCallback();
        _turn.Wait();
        try
        {
            return CallHoldingTurn(body);
        }
        finally
        {
            _turn.Release();
        }
    }

    /// <summary>Like <see cref="Call{T}"/>, but waits for the turn without blocking a thread.</summary>
    internal async Task<T> CallAsync<T>(Func<Sandbox, T> body, CancellationToken cancellationToken = default)
    {
        // No ConfigureAwait(false): guest code, and the host callbacks it makes, run on the caller's
        // scheduler (an Orleans activation's, for grains), never on a stray thread-pool thread.
        await _turn.WaitAsync(cancellationToken);
        try
        {
            return CallHoldingTurn(body);
        }
        finally
        {
            _turn.Release();
        }
    }

    private T CallHoldingTurn<T>(Func<Sandbox, T> body)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            FlushReleases(_sandbox);
            var result = body(_sandbox);
            AfterGuestRan(_sandbox);
            return result;
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

    /// <summary>
    /// A synchronous host callback runs while its sandbox is busy with the call that made it: calling
    /// back into the same sandbox synchronously could only deadlock, so it is refused with an
    /// explanation. (Asynchronous callbacks may call back in: they wait for the turn.)
    /// </summary>
    private void ThrowIfCalledFromOwnCallback()
    {
        if (Volatile.Read(ref _callbackThread) == Environment.CurrentManagedThreadId)
        {
            throw new IsolatedException(
                $"A host callback tried to call into sandbox '{Name}' while that sandbox is waiting for the callback. " +
                "Synchronous re-entry is not supported; make the callback asynchronous (return a Task and use InvokeAsync) to call back in.");
        }
    }

    private void Reset()
    {
        var failed = _sandbox;
        _sandbox = _host.CreateSandbox(Name, HandleGuestRequest, warmStart: true);
        ResetCount++;
        FailPendingOperations(new IsolatedException($"Sandbox '{Name}' failed and was reset while this operation was running.") { IsFatal = true, SandboxWasReset = true });
        failed.Dispose();
    }

    /// <summary>Answers what guest code asks of this runtime's host: assemblies, callbacks, finished operations.</summary>
    private byte[] HandleGuestRequest(ReadOnlySpan<byte> request)
    {
        try
        {
            var reader = new MessagePackReader(request.ToArray());
            var count = reader.ReadArrayHeader();
            var kind = (HostRequestKind)reader.ReadInt32();
            switch (kind)
            {
                case HostRequestKind.LoadAssembly:
                    return _host.HandleHostRequest(request);
                case HostRequestKind.InvokeCallback when count == 3:
                {
                    var name = reader.ReadString() ?? "";
                    var arguments = ReadRawArray(ref reader);
                    var previous = Interlocked.Exchange(ref _callbackThread, Environment.CurrentManagedThreadId);
                    try
                    {
                        return _callbacks.Invoke(name, arguments);
                    }
                    finally
                    {
                        Volatile.Write(ref _callbackThread, previous);
                    }
                }
                case HostRequestKind.InvokeCallbackAsync when count == 4:
                {
                    var name = reader.ReadString() ?? "";
                    var arguments = ReadRawArray(ref reader);
                    var operation = reader.ReadInt32();
                    var generation = ResetCount;
                    var previous = Interlocked.Exchange(ref _callbackThread, Environment.CurrentManagedThreadId);
                    try
                    {
                        return _callbacks.Start(name, arguments, (succeeded, value, message) =>
                            RunOnScheduler(() => CompleteGuestOperationAsync(generation, operation, succeeded, value, message)));
                    }
                    finally
                    {
                        Volatile.Write(ref _callbackThread, previous);
                    }
                }
                case HostRequestKind.OperationCompleted when count == 3:
                {
                    var operation = reader.ReadInt32();
                    var reply = reader.ReadBytes()?.ToArray() ?? [];
                    OnOperationCompleted(operation, reply);
                    return [0xC0];
                }
                default:
                    return CallbackRegistry.Failure($"The host does not understand request kind {(int)kind}.");
            }
        }
        catch (Exception e) when (MalformedMessagePack.Is(e) || e is InvalidOperationException)
        {
            _logger.LogWarning("Sandbox {Sandbox} sent a malformed request: {Message}", Name, e.Message);
            return CallbackRegistry.Failure("The host could not read the request.");
        }
    }

    /// <summary>Slices of the request's own copy (made per request, so the slices may outlive the call, as asynchronous callbacks need).</summary>
    private static ReadOnlyMemory<byte>[] ReadRawArray(ref MessagePackReader reader)
    {
        var count = reader.ReadArrayHeader();
        var items = new ReadOnlyMemory<byte>[count];
        for (var i = 0; i < count; i++)
        {
            items[i] = reader.ReadRaw().First;
        }
        return items;
    }

    /// <summary>Releases the sandbox's memory. Pending asynchronous calls fail.</summary>
    public void Dispose()
    {
        _turn.Wait();
        try
        {
            if (!_disposed)
            {
                _disposed = true;
                _pumpTimer?.Dispose();
                FailPendingOperations(new ObjectDisposedException(nameof(IsolatedRuntime)));
                _sandbox.Dispose();
            }
        }
        finally
        {
            _turn.Release();
        }
    }
}
