using IsolateGrains.Hosting;
using Microsoft.Extensions.Configuration;

namespace IsolateGrains.Silo;

/// <summary>
/// The silo's <c>--warm-cache</c> mode: creates the sandbox host once, which builds the pre-initialized
/// runtime image into the module cache (or finds it there), and exits. Run at Docker image build time so
/// every container starts from a warm cache instead of spending seconds building the image.
/// </summary>
public static class CacheWarmer
{
    /// <summary>Builds or verifies the cached image with the silo's sandbox settings; returns the exit code.</summary>
    public static int Run(IConfiguration configuration)
    {
        // The same binding as SiloConfiguration, so a configured Sandbox:ModuleCacheDirectory is honoured too.
        var options = new IsolateGrainsOptions();
        configuration.GetSection("IsolateGrains").Bind(options, binder => binder.ErrorOnUnknownConfiguration = false);
        using var host = new IsolatedRuntimeHost(options.Sandbox);
        // One sandbox proves the cached image instantiates, not only that it was written.
        new IsolatedRuntime(host).Dispose();
        Console.WriteLine(
            $"Sandbox runtime image {(host.LoadedFromCache ? "already cached" : "built")} in {host.StartupTime.TotalMilliseconds:0} ms: {host.ModuleCachePath}");
        return 0;
    }
}
