using System.Collections.Concurrent;
using IsolateGrains.Protocol;

namespace IsolateGrains;

/// <summary>
/// Serves guest callbacks from typed delegates, for a client observer (<see cref="IIsolateCallback"/>)
/// or inside a callback grain: arguments are read as the delegate's parameter types and the result is
/// written as its (awaited) return type, exactly as for in-process callbacks. A delegate that throws
/// is reported to the guest as a failed call without its message.
/// </summary>
public sealed class IsolateCallbackHandler : IIsolateCallback
{
    private readonly ConcurrentDictionary<string, CallbackSignature> _callbacks = new(StringComparer.Ordinal);

    /// <summary>Registers (or replaces) the delegate that serves <paramref name="name"/>.</summary>
    public IsolateCallbackHandler Register(string name, Delegate callback)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        _callbacks[name] = CallbackSignature.For(callback);
        return this;
    }

    /// <summary>Invoked when a callback throws (for logging); the guest is told only that the call failed.</summary>
    public Action<string, Exception>? OnError { get; set; }

    /// <inheritdoc />
    public async Task<IsolateCallbackReply> Invoke(IsolateCallbackRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!_callbacks.TryGetValue(request.Name, out var signature))
        {
            return new IsolateCallbackReply(null, $"No callback named '{request.Name}' is served by this handler.");
        }
        if (!signature.TryReadArguments(request.Name, request.Arguments.Select(a => (ReadOnlyMemory<byte>)a).ToArray(), out var values, out var failure))
        {
            return new IsolateCallbackReply(null, failure);
        }
        try
        {
            var result = await signature.InvokeAsync(values).ConfigureAwait(false);
            return new IsolateCallbackReply(signature.SerializeResult(result), null);
        }
        catch (Exception e)
        {
            OnError?.Invoke(request.Name, e);
            return new IsolateCallbackReply(null, $"The callback '{request.Name}' failed (details stay with its owner).");
        }
    }
}
