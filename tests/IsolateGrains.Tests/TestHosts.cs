using System.Collections.Concurrent;

namespace IsolateGrains.Tests;

/// <summary>
/// Hosts for tests. One shared host serves most tests; tests that need other limits create their own
/// after the shared one exists, so the runtime image is built at most once per run and then loaded
/// from the cache.
/// </summary>
public static class TestHosts
{
    /// <summary>Guest console lines written through the shared host.</summary>
    public static OutputCollector Output { get; } = new();

    private static readonly Lazy<IsolatedRuntimeHost> s_shared = new(() =>
        new IsolatedRuntimeHost(new IsolatedRuntimeHostOptions { Output = Output.Add }).WithBinDirectoryAssemblyLoader());

    /// <summary>The shared host (bin directory loader, default limits).</summary>
    public static IsolatedRuntimeHost Shared => s_shared.Value;

    /// <summary>A new host with its own options, created after the shared one so the image comes from the cache.</summary>
    public static IsolatedRuntimeHost Create(Action<IsolatedRuntimeHostOptions>? configure = null, Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory = null)
    {
        _ = Shared;
        var options = new IsolatedRuntimeHostOptions { Output = Output.Add };
        configure?.Invoke(options);
        return new IsolatedRuntimeHost(options, loggerFactory);
    }
}

/// <summary>Collects guest output lines, by sandbox.</summary>
public sealed class OutputCollector
{
    private readonly ConcurrentQueue<GuestOutput> _lines = new();

    /// <summary>Adds a line.</summary>
    public void Add(GuestOutput line) => _lines.Enqueue(line);

    /// <summary>The lines a sandbox wrote.</summary>
    public IReadOnlyList<GuestOutput> For(string sandbox) => _lines.Where(l => l.Sandbox == sandbox).ToList();
}
