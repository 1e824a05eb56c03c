using System.Buffers;
using System.Collections.Concurrent;
using IsolateGrains.Protocol;
using MessagePack;
using Microsoft.Extensions.Logging;

namespace IsolateGrains.Callbacks;

/// <summary>
/// The host callbacks one sandbox may call by name (see <see cref="CallbackSignature"/> for how values
/// cross). A callback that throws is logged here; the guest only learns that the call failed, never
/// the host exception's message. A raw callback (used for grain-bound names) gets the arguments as
/// MessagePack values and answers asynchronously.
/// </summary>
internal sealed class CallbackRegistry(ILogger logger)
{
    private readonly ConcurrentDictionary<string, object> _callbacks = new(StringComparer.Ordinal);

    /// <summary>Registers (or replaces) a typed callback.</summary>
    public void Register(string name, Delegate callback)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        _callbacks[name] = CallbackSignature.For(callback);
    }

    /// <summary>Registers (or replaces) a raw asynchronous callback: MessagePack arguments in, a MessagePack value or a failure message out.</summary>
    public void RegisterRaw(string name, RawCallback callback)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(callback);
        _callbacks[name] = callback;
    }

    /// <summary>Removes a callback; returns whether it existed.</summary>
    public bool Unregister(string name) => _callbacks.TryRemove(name, out _);

    /// <summary>Runs a callback to completion (blocking on a task it returns) and encodes the reply for the guest.</summary>
    public byte[] Invoke(string name, IReadOnlyList<ReadOnlyMemory<byte>> arguments)
    {
        switch (_callbacks.GetValueOrDefault(name))
        {
            case null:
                return Failure(Unknown(name));
            case RawCallback:
                return Failure($"Host callback '{name}' is asynchronous (bound to a grain or observer): call it with DotNetIsolatorHost.InvokeAsync.");
            case CallbackSignature signature:
                if (!signature.TryReadArguments(name, arguments, out var values, out var failure))
                {
                    return Failure(failure);
                }
                try
                {
                    // Synchronous callbacks skip the async machinery, which is most of a round trip's host cost.
                    var result = signature.IsAsync ? signature.InvokeAsync(values).GetAwaiter().GetResult() : signature.Invoke(values);
                    return Success(signature.SerializeResult(result));
                }
                catch (Exception e)
                {
                    return Failure(Failed(name, e));
                }
            default:
                return Failure(Unknown(name));
        }
    }

    /// <summary>
    /// Starts a callback for a guest that awaits it. Returns the immediate reply (accepted, or why not);
    /// <paramref name="complete"/> later receives the outcome: (succeeded, value bytes, failure message).
    /// </summary>
    public byte[] Start(string name, IReadOnlyList<ReadOnlyMemory<byte>> arguments, Action<bool, byte[], string?> complete)
    {
        Task<(bool, byte[], string?)> running;
        switch (_callbacks.GetValueOrDefault(name))
        {
            case CallbackSignature signature:
                if (!signature.TryReadArguments(name, arguments, out var values, out var failure))
                {
                    return Failure(failure);
                }
                running = RunTyped(name, signature, values);
                break;
            case RawCallback raw:
                running = RunRaw(name, raw, arguments);
                break;
            default:
                return Failure(Unknown(name));
        }
        running.ContinueWith(t => complete(t.Result.Item1, t.Result.Item2, t.Result.Item3), TaskScheduler.Default);
        return Success([0xC0]);
    }

    private async Task<(bool, byte[], string?)> RunTyped(string name, CallbackSignature signature, object?[] values)
    {
        try
        {
            var result = await signature.InvokeAsync(values).ConfigureAwait(false);
            return (true, signature.SerializeResult(result), null);
        }
        catch (Exception e)
        {
            return (false, [], Failed(name, e));
        }
    }

    private async Task<(bool, byte[], string?)> RunRaw(string name, RawCallback raw, IReadOnlyList<ReadOnlyMemory<byte>> arguments)
    {
        try
        {
            var (result, error) = await raw(arguments).ConfigureAwait(false);
            return error is null ? (true, result ?? [0xC0], null) : (false, [], error);
        }
        catch (Exception e)
        {
            return (false, [], Failed(name, e));
        }
    }

    private static string Unknown(string name) => $"No host callback named '{name}' is registered with this sandbox.";

    private string Failed(string name, Exception exception)
    {
        logger.LogWarning(exception, "Host callback {Callback} threw; the guest is told only that the call failed.", name);
        return $"The call to host callback '{name}' failed on the host (details are in the host's log).";
    }

    /// <summary>The reply handing the guest a callback's serialized result.</summary>
    public static byte[] Success(byte[] value)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(2);
        writer.Write(true);
        writer.WriteRaw(value);
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }

    /// <summary>The reply telling the guest its call failed.</summary>
    public static byte[] Failure(string message)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        writer.WriteArrayHeader(2);
        writer.Write(false);
        writer.Write(message);
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }
}

/// <summary>A callback that takes MessagePack arguments and answers with a MessagePack value, or an error message for the guest.</summary>
internal delegate Task<(byte[]? Result, string? Error)> RawCallback(IReadOnlyList<ReadOnlyMemory<byte>> arguments);
