namespace IsolateGrains;

/// <summary>
/// A client observer that serves callbacks guest code makes (<c>DotNetIsolatorHost.InvokeAsync</c>).
/// Implement it with <see cref="IsolateCallbackHandler"/>, create a reference with
/// <c>IGrainFactory.CreateObjectReference&lt;IIsolateCallback&gt;</c> and bind it with
/// <see cref="IIsolateGrain.BindCallback"/>.
/// </summary>
public interface IIsolateCallback : IGrainObserver
{
    /// <summary>Handles one callback; arguments and result are MessagePack values.</summary>
    Task<IsolateCallbackReply> Invoke(IsolateCallbackRequest request);
}

/// <summary>A grain that serves callbacks guest code makes; bind it with <see cref="IIsolateGrain.BindCallbackGrain"/>.</summary>
public interface IIsolateCallbackGrain : IGrainWithStringKey
{
    /// <summary>Handles one callback; arguments and result are MessagePack values.</summary>
    Task<IsolateCallbackReply> Invoke(IsolateCallbackRequest request);
}

/// <summary>A callback call from guest code.</summary>
[GenerateSerializer, Immutable]
public sealed class IsolateCallbackRequest
{
    /// <summary>Creates a request.</summary>
    public IsolateCallbackRequest(string name, byte[][] arguments)
    {
        Name = name;
        Arguments = arguments;
    }

    /// <summary>The callback name the guest used.</summary>
    [Id(0)]
    public string Name { get; }

    /// <summary>Each argument as a MessagePack value.</summary>
    [Id(1)]
    public byte[][] Arguments { get; }
}

/// <summary>The answer to a callback: a MessagePack value, or a failure message for the guest.</summary>
[GenerateSerializer, Immutable]
public sealed class IsolateCallbackReply
{
    /// <summary>Creates a reply.</summary>
    public IsolateCallbackReply(byte[]? result, string? error)
    {
        Result = result;
        Error = error;
    }

    /// <summary>The result as a MessagePack value (nil for none).</summary>
    [Id(0)]
    public byte[]? Result { get; }

    /// <summary>Set when the callback failed: what the guest is told.</summary>
    [Id(1)]
    public string? Error { get; }
}
