using IsolateGrains.Hosting;
using Microsoft.Extensions.Options;
using Orleans.Core;
using Orleans.Runtime;

namespace IsolateGrains.Grains;

/// <summary>The cluster's uploaded assemblies, kept in the same grain storage as sandbox snapshots.</summary>
public sealed class IsolateAssemblyRegistryGrain : Grain, IIsolateAssemblyRegistry
{
    private readonly IPersistentState<Dictionary<string, byte[]>> _assemblies;

    /// <summary>Creates the grain (Orleans does).</summary>
    public IsolateAssemblyRegistryGrain(IOptions<IsolateGrainsOptions> options, IPersistentStateFactory stateFactory, IGrainContext grainContext) =>
        _assemblies = stateFactory.Create<Dictionary<string, byte[]>>(grainContext, new PersistentStateAttribute("assemblies", options.Value.StorageName));

    /// <inheritdoc />
    public async Task Upload(string name, byte[] content)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(content);
        if (name.IndexOfAny(['/', '\\', ':']) >= 0 || name.Contains("..", StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{name}' is not an assembly name.", nameof(name));
        }
        _assemblies.State[name] = content;
        await _assemblies.WriteStateAsync();
    }

    /// <inheritdoc />
    public Task<byte[]?> Get(string name) => Task.FromResult(_assemblies.State.GetValueOrDefault(name));

    /// <inheritdoc />
    public Task<string[]> List() => Task.FromResult(_assemblies.State.Keys.Order().ToArray());
}
