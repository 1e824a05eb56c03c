using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace IsolateGrains.Hosting;

/// <summary>
/// The silo's one <see cref="IsolatedRuntimeHost"/>, shared by all isolate grains on it, with assembly
/// loaders for the configured <see cref="AssemblySource"/>. Created while the silo starts, so the runtime
/// image is ready (built or loaded from cache) before the first grain activates.
/// </summary>
public sealed class IsolateSandboxHost : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    private readonly Lazy<IsolatedRuntimeHost> _host;
    private readonly ConcurrentDictionary<string, byte[]> _uploads = new(StringComparer.OrdinalIgnoreCase);
    private readonly IGrainFactory _grainFactory;
    private readonly ILogger _logger;

    /// <summary>Creates the holder; the host itself is created on silo start or first use.</summary>
    public IsolateSandboxHost(IOptions<IsolateGrainsOptions> options, IGrainFactory grainFactory, ILoggerFactory loggerFactory)
    {
        _grainFactory = grainFactory;
        _logger = loggerFactory.CreateLogger<IsolateSandboxHost>();
        var settings = options.Value;
        _host = new Lazy<IsolatedRuntimeHost>(() =>
        {
            var host = new IsolatedRuntimeHost(settings.Sandbox, loggerFactory);
            if (settings.AssemblySource is AssemblySource.BinDirectory or AssemblySource.BinDirectoryThenUploaded)
            {
                host.WithBinDirectoryAssemblyLoader();
            }
            if (settings.AssemblySource is AssemblySource.Uploaded or AssemblySource.BinDirectoryThenUploaded)
            {
                host.WithAssemblyLoader(LoadUploaded);
            }
            return host;
        });
    }

    /// <summary>The shared host.</summary>
    public IsolatedRuntimeHost Host => _host.Value;

    /// <inheritdoc />
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(IsolateSandboxHost), ServiceLifecycleStage.ApplicationServices, cancellationToken =>
        {
            _ = Host;
            return Task.CompletedTask;
        });

    /// <summary>
    /// Fetches an uploaded assembly. The loader is called synchronously from inside a sandbox call, so the
    /// first fetch of each assembly blocks on a call to the registry grain; the result is kept per silo.
    /// </summary>
    private byte[]? LoadUploaded(string name)
    {
        if (_uploads.TryGetValue(name, out var cached))
        {
            return cached;
        }
        try
        {
            var registry = _grainFactory.GetGrain<IIsolateAssemblyRegistry>(IsolateAssemblyUpload.RegistryKey);
            var bytes = Task.Run(() => registry.Get(name)).WaitAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
            // Only hits are kept: an assembly uploaded later must be found then.
            return bytes is null ? null : _uploads.GetOrAdd(name, bytes);
        }
        catch (Exception e) when (e is TimeoutException or OrleansException)
        {
            _logger.LogWarning(e, "Fetching uploaded assembly {Assembly} failed.", name);
            return null;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_host.IsValueCreated)
        {
            _host.Value.Dispose();
        }
    }
}
