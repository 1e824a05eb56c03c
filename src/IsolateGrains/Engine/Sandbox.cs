using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using IsolateGrains.Engine.FileSystem;
using IsolateGrains.Engine.Snapshots;
using IsolateGrains.Protocol;
using Wasmtime;

namespace IsolateGrains.Engine;

/// <summary>
/// One WebAssembly instance of the Mono runtime: its store, memory, file table, event-loop state and
/// the C++ exception state of the Emscripten glue. It runs one call at a time and has no locking of
/// its own (the owner serializes calls). After a trap it is faulted for good: Mono was stopped
/// mid-call and nothing inside can be trusted any more.
/// </summary>
internal sealed unsafe class Sandbox : ISandboxDevices, IDisposable
{
    private readonly SandboxImage _image;
    private readonly Store _store;
    private readonly long _monotonicStart = Stopwatch.GetTimestamp();
    private double _monotonicBaseMs;
    private double _deterministicTicks;
    private ulong _deterministicEntropy = 0x9E3779B97F4A7C15;
    private readonly StringBuilder[] _outputLines = [new(), new()];
    private readonly Decoder[] _outputDecoders = [Encoding.UTF8.GetDecoder(), Encoding.UTF8.GetDecoder()];
    private byte[]? _pendingHostReply;
    private int _callDepth;
    private int _completedCalls;
    private bool _disposed;

    /// <summary>Instantiates <paramref name="image"/>'s module in a new store.</summary>
    public Sandbox(SandboxImage image, string name, Func<ReadOnlySpan<byte>, byte[]> hostRequestHandler)
    {
        _image = image;
        Name = name;
        HostRequestHandler = hostRequestHandler;
        _monotonicBaseMs = image.State.MonotonicMilliseconds;
        DispatchMethod = image.State.DispatchMethod;
        MailboxAddress = image.State.MailboxAddress;
        _store = new Store(image.Engine.Engine, this);
        _store.SetLimits(memorySize: image.Limits.MaxMemoryBytes, tableElements: null, instances: 1, tables: 1, memories: 1);
        Files = new SandboxFileSystem(image.FileSystem, this, image.Limits.MaxScratchBytes);
        Files.RestoreTable(image.State.OpenFiles);
        TimerDueMs = image.State.TimerDueMilliseconds;
        BackgroundWorkPending = image.State.BackgroundWorkPending;
        SetDeadline(image.Limits.CallTimeout);
        try
        {
            Instance = image.Engine.Linker.Instantiate(_store, image.Module);
        }
        catch (WasmtimeException e)
        {
            _store.Dispose();
            throw new IsolatedException($"The sandbox could not be created: {e.Message}", e);
        }
        Exports = new GuestExports(Instance);
        SandboxMetrics.SandboxCreated(this);
    }

    /// <summary>A name for logs and output ("sandbox-3").</summary>
    public string Name { get; }

    /// <summary>The instance.</summary>
    public Instance Instance { get; }

    /// <summary>The exports the host calls.</summary>
    public GuestExports Exports { get; }

    /// <summary>The sandbox's files and descriptors.</summary>
    public SandboxFileSystem Files { get; }

    /// <summary>The <c>MonoMethod*</c> of the guest dispatcher.</summary>
    public int DispatchMethod { get; set; }

    /// <summary>The mailbox's address in guest memory.</summary>
    public int MailboxAddress { get; set; }

    /// <summary>Keys of the methods this sandbox has resolved and cached (see <see cref="GuestRequests.InvokeDelegate"/>).</summary>
    public HashSet<ulong> KnownMethodKeys { get; } = [];

    /// <summary>The wall clock the guest sees.</summary>
    public TimeProvider Clock => _image.Clock;

    /// <summary>The limits this sandbox runs under.</summary>
    public SandboxLimits Limits => _image.Limits;

    /// <summary>Receives guest→host requests (assembly loads, callbacks) and returns the reply.</summary>
    public Func<ReadOnlySpan<byte>, byte[]> HostRequestHandler { get; set; }

    /// <summary>Where guest standard output and error go.</summary>
    public Action<GuestOutput> Output => _image.Output;

    /// <summary>Set by <c>schedule_background_exec</c>; cleared when the host runs the work.</summary>
    public bool BackgroundWorkPending { get; set; }

    /// <summary>When the timer <c>mono_wasm_schedule_timer</c> asked for is due, on the monotonic clock.</summary>
    public double? TimerDueMs { get; set; }

    /// <summary>The C++ exception being thrown (Emscripten's <c>exceptionLast</c>).</summary>
    public int CxxExceptionLast { get; set; }

    /// <summary>The C++ exceptions being caught (Emscripten's <c>exceptionCaught</c>).</summary>
    public Stack<int> CxxExceptionsCaught { get; } = new();

    /// <summary>Why the sandbox is unusable, or null while it is healthy.</summary>
    public string? Fault { get; private set; }

    /// <summary>What an import decided just before it stopped the guest (read when the trap arrives).</summary>
    public string? PendingFault { get; set; }

    /// <summary>The memory size as of the last finished call, for the memory gauge.</summary>
    public long ReportedMemoryBytes { get; set; }

    /// <summary>The current size of linear memory in bytes.</summary>
    public long MemoryBytes => Exports.Memory.GetLength();

    /// <summary>Milliseconds on the guest's monotonic clock, continuing from the image's capture.</summary>
    public double MonotonicNowMs => _image.Deterministic
        ? _monotonicBaseMs + (_deterministicTicks += 0.001)
        : _monotonicBaseMs + Stopwatch.GetElapsedTime(_monotonicStart).TotalMilliseconds;

    /// <summary>
    /// Fills <paramref name="destination"/> with random bytes: the host's CSPRNG, or a fixed sequence while
    /// an image is built (whatever the build seeds, every sandbox of that image starts with).
    /// </summary>
    public void FillEntropy(Span<byte> destination)
    {
        if (!_image.Deterministic)
        {
            System.Security.Cryptography.RandomNumberGenerator.Fill(destination);
            return;
        }
        for (var i = 0; i < destination.Length; i++)
        {
            // xorshift64: reproducible, which is the point here.
            _deterministicEntropy ^= _deterministicEntropy << 13;
            _deterministicEntropy ^= _deterministicEntropy >> 7;
            _deterministicEntropy ^= _deterministicEntropy << 17;
            destination[i] = (byte)_deterministicEntropy;
        }
    }

    /// <summary>Finds the sandbox a host function was called for.</summary>
    public static Sandbox From(Caller caller) => (Sandbox)caller.GetData()!;

    /// <summary>
    /// Sends one request to the guest dispatcher and returns its reply. The request is written into a
    /// buffer in guest memory whose address and capacity live in the mailbox (also in guest memory, so
    /// they travel with snapshots).
    /// </summary>
    public byte[] Call(byte[] request)
    {
        ThrowIfUnusable();
        if (request.Length > Limits.MaxPayloadBytes)
        {
            throw new IsolatedException($"The request is {request.Length:N0} bytes, more than the maximum payload of {Limits.MaxPayloadBytes:N0} bytes (IsolatedRuntimeHostOptions.MaxPayloadBytes).");
        }

        var started = Stopwatch.GetTimestamp();
        return Enter(() =>
        {
            // One look at the memory's address and size per step instead of one per field: each accessor of
            // the binding asks Wasmtime for both. Guest code may grow the memory, so look again after it ran.
            var memory = Exports.Memory;
            var mailbox = MailboxAddress;
            var basis = (byte*)memory.GetPointer();
            var size = memory.GetLength();
            if (mailbox <= 0 || (long)mailbox + Mailbox.Size > size)
            {
                throw new SandboxFault("The sandbox's mailbox lies outside its memory.");
            }
            var box = basis + mailbox;
            var buffer = *(int*)(box + Mailbox.RequestPointer);
            var capacity = *(int*)(box + Mailbox.RequestCapacity);
            if (capacity < request.Length || buffer <= 0 || (long)buffer + capacity > size)
            {
                if (buffer > 0 && (long)buffer + capacity <= size)
                {
                    Exports.Free(buffer);
                }
                capacity = Math.Max(request.Length, capacity * 2);
                buffer = Exports.Malloc(capacity);
                if (buffer == 0)
                {
                    throw new SandboxFault($"The guest could not allocate {capacity:N0} bytes for the request: its memory is exhausted.");
                }
                basis = (byte*)memory.GetPointer();
                size = memory.GetLength();
                box = basis + mailbox;
                *(int*)(box + Mailbox.RequestPointer) = buffer;
                *(int*)(box + Mailbox.RequestCapacity) = capacity;
            }
            request.CopyTo(new Span<byte>(basis + buffer, request.Length));
            *(int*)(box + Mailbox.RequestLength) = request.Length;
            *(int*)(box + Mailbox.ResponsePointer) = 0;
            *(int*)(box + Mailbox.ResponseLength) = 0;

            Exports.InvokeJsExport(DispatchMethod, mailbox);
            Pump();

            basis = (byte*)memory.GetPointer();
            size = memory.GetLength();
            box = basis + mailbox;
            var responsePointer = *(int*)(box + Mailbox.ResponsePointer);
            var responseLength = *(int*)(box + Mailbox.ResponseLength);
            if (responsePointer <= 0 || responseLength < 0 || (long)responsePointer + responseLength > size)
            {
                throw new SandboxFault("The guest dispatcher returned no valid reply.");
            }
            if (responseLength > Limits.MaxPayloadBytes)
            {
                throw new IsolatedException($"The reply is {responseLength:N0} bytes, more than the maximum payload of {Limits.MaxPayloadBytes:N0} bytes (IsolatedRuntimeHostOptions.MaxPayloadBytes).");
            }
            var reply = new ReadOnlySpan<byte>(basis + responsePointer, responseLength).ToArray();
            SandboxMetrics.CallFinished(this, started, size);
            if (++_completedCalls == 1)
            {
                Template?.ObserveFirstCall(this);
            }
            return reply;
        });
    }

    /// <summary>Runs due background work and timers (after every call into the guest).</summary>
    public void Pump()
    {
        while (true)
        {
            if (BackgroundWorkPending)
            {
                BackgroundWorkPending = false;
                Exports.BackgroundExec();
            }
            else if (TimerDueMs is { } due && MonotonicNowMs >= due)
            {
                TimerDueMs = null;
                Exports.ExecuteTimer();
            }
            else
            {
                return;
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/> (which calls into the guest) under the CPU deadline, and turns a
    /// trap into an <see cref="IsolatedException"/> that says what happened, faulting the sandbox.
    /// </summary>
    public T Enter<T>(Func<T> body)
    {
        ThrowIfUnusable();
        HasRun = true;
        if (_callDepth++ == 0)
        {
            SetDeadline(Limits.CallTimeout);
        }
        try
        {
            return body();
        }
        catch (Exception e) when (e is WasmtimeException or SandboxFault)
        {
            Fault = Describe(e);
            SandboxMetrics.Trapped(e is TrapException trap ? trap.Type.ToString() : "fault");
            PendingFault = null;
            throw new IsolatedException(Fault + " The sandbox is unusable after this fault.", e) { IsFatal = true };
        }
        finally
        {
            _callDepth--;
        }
    }

    /// <summary>Throws if the sandbox has faulted or was disposed.</summary>
    public void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Fault is not null)
        {
            throw new IsolatedException($"The sandbox faulted earlier and cannot run anything more: {Fault}") { IsFatal = true };
        }
    }

    /// <summary>Reads a NUL-terminated UTF-8 string from guest memory.</summary>
    public string ReadCString(int address)
    {
        if (address == 0)
        {
            return "";
        }
        var span = Exports.Memory.GetSpan(address, (int)Math.Min(int.MaxValue, Exports.Memory.GetLength() - address));
        var end = span.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? span : span[..end]);
    }

    /// <summary>Sends a runtime log line to the host's trace.</summary>
    public void Trace(string message) => _image.Trace?.Invoke(Name, message);

    /// <summary>Captures the host-side state that goes with this sandbox's memory.</summary>
    public ImageState CaptureState() => new(DispatchMethod, MailboxAddress, MonotonicNowMs, TimerDueMs, BackgroundWorkPending, Files.CaptureTable());

    /// <summary>The image this sandbox was instantiated from.</summary>
    public SandboxImage Image => _image;

    /// <summary>The warm-start template this sandbox was started from, or null when it started from the bare image.</summary>
    public WarmStart.SandboxTemplate? Template { get; set; }

    /// <summary>True once anything has run in the sandbox (a snapshot can only be applied before).</summary>
    public bool HasRun { get; private set; }

    /// <summary>
    /// Takes a snapshot of the whole sandbox (between calls): collects the guest's garbage first, so that
    /// dead objects and a used nursery do not travel, then captures what differs from the image.
    /// </summary>
    public SandboxSnapshot TakeSnapshot()
    {
        GuestRequests.ReadReply(Call(GuestRequests.CollectGarbage()));
        return SandboxSnapshotter.Capture(this);
    }

    /// <summary>Takes a snapshot (see <see cref="TakeSnapshot"/>) and encodes it (format: <see cref="SandboxSnapshot"/>).</summary>
    public byte[] CaptureSnapshot()
    {
        var started = Stopwatch.GetTimestamp();
        using var snapshot = TakeSnapshot();
        var encoded = snapshot.Encode();
        SandboxMetrics.SnapshotCaptured(encoded.Length, Stopwatch.GetElapsedTime(started));
        return encoded;
    }

    /// <summary>
    /// Turns this sandbox, which must be freshly instantiated with nothing run in it, into the one
    /// <paramref name="snapshot"/> was taken of. Throws an <see cref="IsolatedException"/> when the snapshot
    /// comes from another image or runtime.
    /// </summary>
    public void ApplySnapshot(SandboxSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ThrowIfUnusable();
        if (HasRun || Template is not null)
        {
            throw new InvalidOperationException("A snapshot can only be applied to a sandbox on which nothing has run yet, started from the bare image.");
        }
        SandboxSnapshotter.Apply(this, snapshot);
    }

    /// <summary>Creates a sandbox from <paramref name="image"/> (mapped copy-on-write) and applies <paramref name="snapshot"/> to it.</summary>
    public static Sandbox Restore(SandboxImage image, string name, Func<ReadOnlySpan<byte>, byte[]> hostRequestHandler, SandboxSnapshot snapshot)
    {
        var started = Stopwatch.GetTimestamp();
        var sandbox = new Sandbox(image, name, hostRequestHandler);
        try
        {
            sandbox.ApplySnapshot(snapshot);
            SandboxMetrics.SnapshotRestored(Stopwatch.GetElapsedTime(started));
            return sandbox;
        }
        catch
        {
            sandbox.Dispose();
            throw;
        }
    }

    /// <summary>Sets the guest's monotonic clock so that it reads <paramref name="milliseconds"/> now (a restored sandbox's clock continues from its snapshot).</summary>
    public void ContinueClockFrom(double milliseconds) =>
        _monotonicBaseMs = milliseconds - Stopwatch.GetElapsedTime(_monotonicStart).TotalMilliseconds;

    /// <summary>A span of guest memory (valid until the guest runs again).</summary>
    public Span<byte> Span(int address, int length) => Exports.Memory.GetSpan(address, length);

    /// <inheritdoc />
    public void WriteOutput(DeviceKind stream, ReadOnlySpan<byte> bytes)
    {
        var index = stream == DeviceKind.StandardError ? 1 : 0;
        var chars = new char[_outputDecoders[index].GetCharCount(bytes, flush: false)];
        _outputDecoders[index].GetChars(bytes, chars, flush: false);
        var line = _outputLines[index];
        foreach (var c in chars)
        {
            if (c == '\n')
            {
                EmitLine(index);
            }
            else if (line.Length < 64 * 1024)
            {
                line.Append(c);
            }
        }
    }

    /// <inheritdoc />
    public int ExchangeWithHost(Span<byte> buffer)
    {
        if (buffer.Length < 4)
        {
            return -Errno.Invalid;
        }
        var requestLength = BinaryPrimitives.ReadInt32LittleEndian(buffer);
        byte[] reply;
        if (requestLength == HostChannel.FetchPendingReply)
        {
            reply = _pendingHostReply ?? [];
            _pendingHostReply = null;
        }
        else if (requestLength < 0 || requestLength > buffer.Length - 4)
        {
            return -Errno.Invalid;
        }
        else
        {
            reply = HostRequestHandler(buffer.Slice(4, requestLength));
        }

        BinaryPrimitives.WriteInt32LittleEndian(buffer, reply.Length);
        if (reply.Length > buffer.Length - 4)
        {
            // Too big for the guest's buffer: keep it and let the guest fetch it with a larger one.
            _pendingHostReply = reply;
            return 4;
        }
        reply.CopyTo(buffer[4..]);
        return 4 + reply.Length;
    }

    /// <summary>Flushes partial output lines and releases the store.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        for (var i = 0; i < _outputLines.Length; i++)
        {
            if (_outputLines[i].Length > 0)
            {
                EmitLine(i);
            }
        }
        SandboxMetrics.SandboxDisposed(this);
        _store.Dispose();
    }

    private void EmitLine(int index)
    {
        var text = _outputLines[index].ToString().TrimEnd('\r');
        _outputLines[index].Clear();
        Output(new GuestOutput(Name, index == 1 ? GuestOutputStream.StandardError : GuestOutputStream.StandardOutput, text));
    }

    private void SetDeadline(TimeSpan timeout)
    {
        var ticks = (ulong)Math.Ceiling(timeout.TotalMilliseconds / SandboxEngine.EpochTickMilliseconds) + 1;
        _store.SetEpochDeadline(ticks);
    }

    private string Describe(Exception e)
    {
        if (PendingFault is { } pending)
        {
            return pending;
        }
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is SandboxFault fault)
            {
                return fault.Message;
            }
        }
        if (e is TrapException trap)
        {
            return trap.Type switch
            {
                TrapCode.Interrupt => $"The call ran past its CPU deadline of {Limits.CallTimeout.TotalSeconds:0.###} s and was stopped (IsolatedRuntimeHostOptions.CallTimeout).",
                TrapCode.StackOverflow => "The guest overflowed its WebAssembly stack (deep or infinite recursion).",
                TrapCode.MemoryOutOfBounds => "The guest accessed memory out of bounds.",
                TrapCode.Unreachable => "The guest reached an unreachable instruction (a crash inside the runtime).",
                _ => $"The guest trapped ({trap.Type}): {FirstLine(trap.Message)}",
            };
        }
        return $"The guest trapped: {FirstLine(e.Message)}";
    }

    private static string FirstLine(string message)
    {
        var newline = message.IndexOf('\n');
        return newline < 0 ? message : message[..newline];
    }
}
