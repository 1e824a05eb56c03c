using IsolateGrains.Engine.Snapshots;

namespace IsolateGrains;

public sealed partial class IsolatedRuntime
{
    /// <summary>
    /// Captures the sandbox's whole state (its memory, globals, scratch files, open files, timer and clock)
    /// as bytes that <see cref="Restore"/> turns back into a runtime, in this process or another one whose
    /// host runs the same runtime image. Only what differs from the image is stored, compressed; the guest's
    /// garbage is collected first. Runs between calls, like one.
    /// </summary>
    /// <remarks>
    /// Host-side state is not part of it: host callbacks must be registered again on the restored runtime,
    /// and <see cref="IsolatedObject"/>s of this runtime do not refer to the restored one's objects. A
    /// snapshot cannot be taken while asynchronous calls into the sandbox are still running.
    /// </remarks>
    public byte[] CaptureSnapshot() => Call(sandbox =>
    {
        ThrowIfOperationsPending();
        return sandbox.CaptureSnapshot();
    });

    /// <summary>
    /// Creates a runtime whose sandbox is the one <paramref name="snapshot"/> was taken of. Throws an
    /// <see cref="IsolatedException"/> that says why when the snapshot is damaged or was taken under
    /// another runtime image than <paramref name="host"/>'s.
    /// </summary>
    /// <param name="host">The host; it must run the image the snapshot was taken from.</param>
    /// <param name="snapshot">Bytes from <see cref="CaptureSnapshot"/>.</param>
    /// <param name="name">The new runtime's name (default: a new "sandbox-N").</param>
    public static IsolatedRuntime Restore(IsolatedRuntimeHost host, byte[] snapshot, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(snapshot);
        // Decompressing the snapshot and instantiating the bare sandbox it lands in do not depend on each other: a
        // pool thread starts the sandbox while this one decodes, if it gets to it first. Only this thread ever
        // waits, and nothing is instantiated for a snapshot that fails to decode before the pool thread started.
        var start = new RestoreStart();
        ThreadPool.UnsafeQueueUserWorkItem(static work => work.Start.RunOnPool((work.Host, work.Name)), (Start: start, Host: host, Name: name), preferLocal: false);
        SandboxSnapshot decoded;
        try
        {
            decoded = SandboxSnapshot.Decode(snapshot);
        }
        catch
        {
            start.Abandon();
            throw;
        }
        using (decoded)
        {
            var runtime = start.Take(host, name);
            try
            {
                runtime._sandbox.ApplySnapshot(decoded);
            }
            catch
            {
                runtime.Dispose();
                throw;
            }
            return runtime;
        }
    }

    /// <summary>Who instantiates the sandbox a snapshot is restored into: the pool thread, if it claims it first, or the caller.</summary>
    private sealed class RestoreStart
    {
        private const int Unclaimed = 0, ClaimedByPool = 1, ClaimedByCaller = 2;
        private readonly TaskCompletionSource<IsolatedRuntime> _made = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _claim;

        /// <summary>The caller's turn: the pool thread's sandbox, or one made now if the pool never started.</summary>
        public IsolatedRuntime Take(IsolatedRuntimeHost host, string? name) =>
            Interlocked.CompareExchange(ref _claim, ClaimedByCaller, Unclaimed) == Unclaimed
                ? new IsolatedRuntime(host, name, warmStart: false)
                : _made.Task.GetAwaiter().GetResult();

        /// <summary>The snapshot was bad: no sandbox is wanted (one the pool thread is making is disposed when done).</summary>
        public void Abandon()
        {
            if (Interlocked.CompareExchange(ref _claim, ClaimedByCaller, Unclaimed) == ClaimedByPool)
            {
                _made.Task.ContinueWith(static made => made.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            }
        }

        /// <summary>The pool thread's turn.</summary>
        public void RunOnPool((IsolatedRuntimeHost Host, string? Name) what)
        {
            if (Interlocked.CompareExchange(ref _claim, ClaimedByPool, Unclaimed) != Unclaimed)
            {
                return;
            }
            try
            {
                _made.SetResult(new IsolatedRuntime(what.Host, what.Name, warmStart: false));
            }
            catch (Exception e)
            {
                _made.SetException(e);
            }
        }
    }

    /// <summary>
    /// Creates a runtime whose sandbox starts as a copy of this one (statics, objects, scratch files);
    /// from then on the two are independent. Cheaper than <see cref="CaptureSnapshot"/> and
    /// <see cref="Restore"/>: the state is copied without being encoded.
    /// </summary>
    /// <param name="name">The new runtime's name (default: a new "sandbox-N").</param>
    public IsolatedRuntime Fork(string? name = null)
    {
        using var snapshot = Call(sandbox =>
        {
            ThrowIfOperationsPending();
            return sandbox.TakeSnapshot();
        });
        return new IsolatedRuntime(_host, name, snapshot);
    }

    /// <summary>Creates a runtime from a fresh sandbox, then turns that sandbox into the snapshot's.</summary>
    private IsolatedRuntime(IsolatedRuntimeHost host, string? name, SandboxSnapshot snapshot) : this(host, name, warmStart: false)
    {
        try
        {
            _sandbox.ApplySnapshot(snapshot);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Refuses to snapshot while the host awaits guest operations: their callers wait in this process,
    /// so a restored sandbox would finish them for nobody, or wait forever for callbacks that never come.
    /// </summary>
    private void ThrowIfOperationsPending()
    {
        var running = _operations.Values.Count(completion => !completion.Task.IsCompleted);
        if (running > 0)
        {
            throw new IsolatedException(
                $"Sandbox '{Name}' cannot be snapshotted while {running} asynchronous call(s) into it are still running: " +
                "their callers wait in this process and cannot travel with the snapshot. Await them first.");
        }
    }
}
