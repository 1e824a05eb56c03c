namespace IsolateGrains.Grains;

/// <summary>What an isolate grain keeps in grain storage.</summary>
[GenerateSerializer]
public sealed class IsolateGrainState
{
    /// <summary>The sandbox's last snapshot (compressed pages that differ from the runtime image, plus host-side state).</summary>
    [Id(0)]
    public byte[]? Snapshot { get; set; }

    /// <summary>Callback names bound to grains (observer bindings live only as long as the activation).</summary>
    [Id(1)]
    public Dictionary<string, IIsolateCallbackGrain> CallbackGrains { get; set; } = new(StringComparer.Ordinal);
}
