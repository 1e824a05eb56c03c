using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using IsolateGrains.Engine;
using IsolateGrains.Protocol;
using MessagePack;
using Microsoft.Extensions.Logging;

namespace IsolateGrains;

public sealed partial class IsolatedRuntime
{
    private readonly ConcurrentDictionary<int, TaskCompletionSource<byte[]>> _operations = new();
    private readonly ConcurrentDictionary<int, bool> _abandonedOperations = new();
    private readonly object _pumpGate = new();
    private Timer? _pumpTimer;
    private double _pumpDueMs = double.MaxValue;

    /// <summary>
    /// Runs asynchronous guest code and awaits it without blocking a thread: <c>await Task.Delay</c>,
    /// <c>Task.Yield</c> and awaits of asynchronous host callbacks complete as the host pumps the
    /// sandbox's event loop. Cancelling stops waiting; the sandbox stays usable (the guest code itself
    /// runs on to completion, and its result is dropped).
    /// </summary>
    [OverloadResolutionPriority(1)] // async lambdas fit Task and ValueTask alike: prefer Task.
    public async Task InvokeAsync(Func<Task> func, CancellationToken cancellationToken = default) =>
        await InvokeDelegateAsync(func, cancellationToken).ConfigureAwait(false);

    /// <summary>Runs asynchronous guest code and returns a copy of its result.</summary>
    [OverloadResolutionPriority(1)]
    public async Task<TResult> InvokeAsync<TResult>(Func<Task<TResult>> func, CancellationToken cancellationToken = default) =>
        GuestRequests.Deserialize<TResult>(await InvokeDelegateAsync(func, cancellationToken).ConfigureAwait(false))!;

    /// <summary>Runs asynchronous guest code returning a <see cref="ValueTask"/>.</summary>
    public async Task InvokeAsync(Func<ValueTask> func, CancellationToken cancellationToken = default) =>
        await InvokeDelegateAsync(func, cancellationToken).ConfigureAwait(false);

    /// <summary>Runs asynchronous guest code returning a <see cref="ValueTask{TResult}"/> and returns a copy of its result.</summary>
    public async Task<TResult> InvokeAsync<TResult>(Func<ValueTask<TResult>> func, CancellationToken cancellationToken = default) =>
        GuestRequests.Deserialize<TResult>(await InvokeDelegateAsync(func, cancellationToken).ConfigureAwait(false))!;

    private async Task<ReadOnlyMemory<byte>> InvokeDelegateAsync(Delegate @delegate, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(@delegate);
        var reply = await CallAsync(sandbox =>
        {
            var request = GuestRequests.InvokeDelegate(@delegate, sandbox.KnownMethodKeys, out var key);
            var decoded = ReadReplyTrackingPending(sandbox.Call(request));
            if (sandbox.KnownMethodKeys.Add(key))
            {
                _host.Learned(GuestRequests.MethodToPrepare(@delegate));
            }
            return decoded;
        }, cancellationToken).ConfigureAwait(false);
        return await AwaitReplyAsync(reply, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Notes the method of an encoded delegate invocation (grains send those) the first time it succeeds in
    /// this sandbox: later requests for it are sent without their descriptor, and — as the typed invocations
    /// do — the host learns it, so new sandboxes of the host start warm for it.
    /// </summary>
    private void NoteEncodedMethod(Sandbox sandbox, byte[] request, ulong key, byte[] reply)
    {
        if (!GuestRequests.IsSuccessOrPending(reply) || !sandbox.KnownMethodKeys.Add(key))
        {
            return;
        }
        // The descriptor is read again only here, once per method and sandbox; the key check inside keeps a
        // request whose descriptor names another method from teaching the template.
        if (_host.WarmStart is not null && GuestRequests.TryReadMethodToPrepare(request, s_noKeys) is { } method)
        {
            _host.Learned(method);
        }
    }

    private static readonly IReadOnlySet<ulong> s_noKeys = new HashSet<ulong>();

    /// <summary>
    /// The kind of an encoded request and, for <c>[InvokeDelegate, key, descriptor | nil, target | nil]</c>, where it
    /// keeps its parts: the key, and the byte range of the descriptor (or of its nil). Null parts for what cannot be
    /// read (the guest says what is wrong with it) or belongs to another kind.
    /// </summary>
    private static (GuestRequestKind? Kind, (ulong Key, int DescriptorStart, int DescriptorEnd)? Layout) ReadHead(byte[] request)
    {
        GuestRequestKind? kind = null;
        try
        {
            var reader = new MessagePackReader(request);
            var count = reader.ReadArrayHeader();
            if (count < 1)
            {
                return (null, null);
            }
            kind = (GuestRequestKind)reader.ReadInt32();
            if (count != 4 || kind != GuestRequestKind.InvokeDelegate)
            {
                return (kind, null);
            }
            var key = reader.ReadUInt64();
            var start = (int)reader.Consumed;
            reader.Skip();
            return (kind, (key, start, (int)reader.Consumed));
        }
        catch (Exception e) when (MalformedMessagePack.Is(e))
        {
            return (kind, null); // Malformed (a negative key overflows, say): the guest says so.
        }
    }

    /// <summary>
    /// The request to send for an encoded one: a delegate invocation whose method this sandbox already resolved
    /// goes without its descriptor (callers that cannot know what the sandbox has seen, grain clients, always
    /// send it; decoding it in the interpreted guest costs more than this copy).
    /// </summary>
    private static byte[] WithoutKnownDescriptor(Sandbox sandbox, byte[] request, (ulong Key, int DescriptorStart, int DescriptorEnd)? layout)
    {
        if (layout is not { } parts || parts.DescriptorEnd - parts.DescriptorStart <= 1 || !sandbox.KnownMethodKeys.Contains(parts.Key))
        {
            return request;
        }
        var stripped = new byte[request.Length - (parts.DescriptorEnd - parts.DescriptorStart) + 1];
        request.AsSpan(0, parts.DescriptorStart).CopyTo(stripped);
        stripped[parts.DescriptorStart] = MessagePackCode.Nil;
        request.AsSpan(parts.DescriptorEnd).CopyTo(stripped.AsSpan(parts.DescriptorStart + 1));
        return stripped;
    }

    /// <summary>
    /// Sends an already encoded request and returns the guest's final reply, undecoded (after awaiting the
    /// guest's task if it was pending). Grains use this: the caller decodes the reply.
    /// </summary>
    internal async Task<byte[]> ExecuteAsync(byte[] request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (kind, layout) = ReadHead(request);
        if (kind is { } requested && GuestRequests.IsHostOnly(requested))
        {
            // Callers' bytes may name any kind; those only the host itself sends (completing a guest's awaited callback,
            // preparing a template) would let a caller forge results or state, so they are refused here.
            return GuestRequests.BadRequestReply("That request kind is sent only by the host itself and is not accepted from callers.");
        }
        var (reply, pending) = await CallAsync(sandbox =>
        {
            var raw = sandbox.Call(WithoutKnownDescriptor(sandbox, request, layout));
            var operation = GuestRequests.PeekPending(raw);
            if (layout is { } parts && !sandbox.KnownMethodKeys.Contains(parts.Key))
            {
                NoteEncodedMethod(sandbox, request, parts.Key, raw);
            }
            if (operation is { } id)
            {
                _operations.GetOrAdd(id, NewCompletion);
            }
            return (raw, operation);
        }, cancellationToken);
        if (pending is not { } pendingOperation)
        {
            return reply;
        }
        var completion = _operations.GetOrAdd(pendingOperation, NewCompletion);
        try
        {
            return await completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (completion.Task.IsCompleted)
            {
                _operations.TryRemove(pendingOperation, out _);
            }
        }
    }

    /// <summary>True while the host awaits guest operations (an outer call whose guest code is awaiting, say).</summary>
    // IsEmpty takes the dictionary's (uncontended) locks only to confirm emptiness; enumerating takes none. Values would
    // copy every entry under all the locks, on every call.
    internal bool HasRunningOperations => !_operations.IsEmpty && _operations.Any(pair => !pair.Value.Task.IsCompleted);

    /// <summary>Decodes a reply; a pending one gets its completion slot now, while the turn is held.</summary>
    internal GuestRequests.GuestReply ReadReplyTrackingPending(byte[] reply)
    {
        var decoded = GuestRequests.ReadReplyOrPending(reply);
        if (decoded.PendingOperation is { } operation)
        {
            _operations.GetOrAdd(operation, NewCompletion);
        }
        return decoded;
    }

    /// <summary>The final result of a reply: at once, or when the guest reports the operation finished.</summary>
    internal async Task<ReadOnlyMemory<byte>> AwaitReplyAsync(GuestRequests.GuestReply reply, CancellationToken cancellationToken)
    {
        if (reply.PendingOperation is not { } operation)
        {
            return reply.Value;
        }
        var completion = _operations.GetOrAdd(operation, NewCompletion);
        try
        {
            var final = await completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            return GuestRequests.ReadReply(final) ?? default;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            if (!completion.Task.IsCompleted)
            {
                _abandonedOperations[operation] = true;
            }
            throw;
        }
        finally
        {
            if (completion.Task.IsCompleted || cancellationToken.IsCancellationRequested)
            {
                _operations.TryRemove(operation, out _);
            }
        }
    }

    /// <summary>The guest finished an operation the host awaits (called during a call or a pump).</summary>
    private void OnOperationCompleted(int operation, byte[] reply)
    {
        if (_abandonedOperations.TryRemove(operation, out _))
        {
            return;
        }
        _operations.GetOrAdd(operation, NewCompletion).TrySetResult(reply);
    }

    private static TaskCompletionSource<byte[]> NewCompletion(int operation) => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Delivers the outcome of an asynchronous host callback to the guest that awaits it.</summary>
    private async Task CompleteGuestOperationAsync(int generation, int operation, bool succeeded, byte[] value, string? message)
    {
        try
        {
            await CallAsync(sandbox =>
            {
                if (generation != ResetCount)
                {
                    return 0; // The sandbox that asked was reset; nobody waits for this any more.
                }
                GuestRequests.ReadReply(sandbox.Call(GuestRequests.CompleteOperation(operation, succeeded, value, message)));
                return 0;
            }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IsolatedException or ObjectDisposedException)
        {
            _logger.LogDebug(e, "Completing guest operation {Operation} in sandbox {Sandbox} failed.", operation, Name);
        }
    }

    /// <summary>
    /// After any call: if the host awaits guest operations and the guest has timers or background work,
    /// schedule a pump of its event loop for when the next one is due.
    /// </summary>
    private void AfterGuestRan(Sandbox sandbox)
    {
        if (!HasRunningOperations)
        {
            return;
        }
        double? due = sandbox.BackgroundWorkPending ? sandbox.MonotonicNowMs : sandbox.TimerDueMs;
        if (due is not { } dueMs)
        {
            return;
        }
        var delay = Math.Max(0, dueMs - sandbox.MonotonicNowMs);
        lock (_pumpGate)
        {
            var at = Environment.TickCount64 + delay;
            if (_pumpDueMs <= at)
            {
                return;
            }
            _pumpDueMs = at;
            _pumpTimer ??= new Timer(static state => ((IsolatedRuntime)state!).RunOnScheduler(((IsolatedRuntime)state!).PumpAsync), this, Timeout.Infinite, Timeout.Infinite);
            _pumpTimer.Change((long)Math.Ceiling(delay), Timeout.Infinite);
        }
    }

    private async Task PumpAsync()
    {
        lock (_pumpGate)
        {
            _pumpDueMs = double.MaxValue;
        }
        try
        {
            await CallAsync(sandbox =>
            {
                sandbox.Enter(() =>
                {
                    sandbox.Pump();
                    return 0;
                });
                return 0;
            }).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IsolatedException or ObjectDisposedException)
        {
            // A fault while pumping already reset the sandbox and failed the pending operations.
        }
    }

    private void FailPendingOperations(Exception error)
    {
        foreach (var (operation, completion) in _operations)
        {
            completion.TrySetException(error);
            _operations.TryRemove(operation, out _);
        }
        _abandonedOperations.Clear();
    }
}
