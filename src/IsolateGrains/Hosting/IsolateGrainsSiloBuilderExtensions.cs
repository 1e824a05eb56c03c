using IsolateGrains.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Orleans.Runtime;
using Orleans.Storage;

// In Orleans' namespace, like Orleans' own builder extensions, so that it is found where they are.
namespace Orleans.Hosting;

/// <summary>Adds isolate grains to a silo.</summary>
public static class IsolateGrainsSiloBuilderExtensions
{
    /// <summary>
    /// Adds everything isolate grains need: the shared sandbox host (its runtime image is made ready while
    /// the silo starts), the grains, and — if no grain storage named <see cref="IsolateGrainsOptions.StorageName"/>
    /// is registered yet — memory grain storage for snapshots. Register a durable storage provider (Redis)
    /// under that name before calling this to keep sandboxes across silo restarts.
    /// </summary>
    public static ISiloBuilder AddIsolateGrains(this ISiloBuilder builder, Action<IsolateGrainsOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new IsolateGrainsOptions();
        configure?.Invoke(options);
        options.Sandbox.Validate();
        builder.Services.AddSingleton(Microsoft.Extensions.Options.Options.Create(options));

        var hasStorage = builder.Services.Any(d => d.ServiceType == typeof(IGrainStorage) && Equals(d.ServiceKey, options.StorageName));
        if (!hasStorage)
        {
            builder.AddMemoryGrainStorage(options.StorageName);
        }

        builder.Services.TryAddSingleton<IsolateSandboxHost>();
        builder.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<IsolateSandboxHost>());
        return builder;
    }
}
