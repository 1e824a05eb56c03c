using System.Diagnostics;
using System.Runtime.InteropServices;
using ClusterDemo;
using IsolateGrains;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

// A client of a silo cluster: N isolate grains each run lambdas in their own sandbox; the demo prints which
// silo hosts each. It uploads its own assembly, so the silos must accept uploads. docker/docker-compose.yml
// runs it against three silos; against one local silo (the silo's defaults are the client's):
//   IsolateGrains__AssemblySource=BinDirectoryThenUploaded dotnet run --project src/Silo
//   dotnet run --project samples/ClusterDemo
// Against a Redis cluster, the silos' keys: Orleans__Clustering=Redis Orleans__Redis=127.0.0.1:6379 ...
// Demo__Grains sets N (default 30); Demo__Silos how many active silos to wait for before placing grains
// (default 1; docker-compose.yml sets 3). Run it again: the counters continue, the sandboxes are durable.
var builder = Host.CreateApplicationBuilder(args);
// Orleans warns about every failed attempt to find a gateway while the silos start; the demo says it once.
builder.Logging.AddFilter("Orleans", LogLevel.Error).AddFilter("Microsoft", LogLevel.Warning);
var grainCount = builder.Configuration.GetValue("Demo:Grains", 30);
var siloCount = builder.Configuration.GetValue("Demo:Silos", 1);
var connectTimeout = builder.Configuration.GetValue("Demo:ConnectTimeout", TimeSpan.FromSeconds(60));
var connectStarted = Stopwatch.GetTimestamp();
var waitingSaid = false;
// Services.AddOrleansClient, not UseOrleansClient: UseOrleansClient lets Orleans read the host's configuration
// itself, and it takes "Orleans:Clustering" for its own provider section (Orleans:Clustering:ProviderType), so
// the plain "Redis"/"Localhost" this client shares with the silo would make it fail at start.
builder.Services.AddOrleansClient(client =>
{
    ClientConfiguration.Configure(client, builder.Configuration);
    // The silos may still be starting (docker compose starts this container with them): keep trying a while.
    client.UseConnectionRetryFilter(async (exception, cancellationToken) =>
    {
        if (Stopwatch.GetElapsedTime(connectStarted) > connectTimeout)
        {
            return false;
        }
        if (!waitingSaid)
        {
            Console.WriteLine($"Waiting for the cluster (up to {connectTimeout.TotalSeconds:0} s): {exception.Message}");
            waitingSaid = true;
        }
        await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken);
        return true;
    });
});

using var host = builder.Build();
await host.StartAsync();
try
{
    var cluster = host.Services.GetRequiredService<IClusterClient>();
    // Grains are placed on the silos that are active when they are first called: wait for the others to join,
    // or a cluster that is still starting puts every grain on its first silo.
    var activeSilos = await WaitForSilosAsync(cluster, siloCount, connectTimeout - Stopwatch.GetElapsedTime(connectStarted));
    Console.WriteLine($"Connected to {activeSilos} active silos. Running lambdas in {grainCount} isolate grains.");

    // Silos whose sandboxes load code from uploads (IsolateGrains__AssemblySource=BinDirectoryThenUploaded,
    // as docker-compose.yml sets it) find this assembly, and the lambdas in it, only once it is uploaded.
    await Retry.Call(() => cluster.UploadIsolateAssemblies(typeof(SandboxCounter).Assembly));

    var results = await Task.WhenAll(Enumerable.Range(0, grainCount).Select(async i =>
    {
        var grain = cluster.GetGrain<IIsolateGrain>($"demo-{i}");
        // A retried call may have run before its answer was lost; a demo counter may then skip a number.
        var counter = await Retry.Call(() => grain.Invoke(() => ++SandboxCounter.Value));
        var sandbox = await Retry.Call(() => grain.Invoke(() =>
            $"{RuntimeInformation.OSArchitecture}, {Environment.GetEnvironmentVariables().Count} environment variables"));
        var status = await Retry.Call(() => grain.GetStatus());
        return (Key: grain.GetPrimaryKeyString(), Counter: counter, Sandbox: sandbox, status.Silo, status.RestoredFrom);
    }));

    Console.WriteLine("Grains per silo:");
    foreach (var silo in results.GroupBy(r => r.Silo).OrderBy(g => g.Key, StringComparer.Ordinal))
    {
        Console.WriteLine($"  {silo.Key}: {silo.Count()}");
    }
    Console.WriteLine("A few results:");
    foreach (var result in results.Take(5))
    {
        Console.WriteLine($"  {result.Key} on {result.Silo}: counter {result.Counter}, sandbox from {result.RestoredFrom}, runs on {result.Sandbox}");
    }
    // Each sandbox has its own statics: the client's copy of the counter was never touched.
    Console.WriteLine($"The client's own SandboxCounter.Value: {SandboxCounter.Value}");
    return 0;
}
catch (IsolatedException e) when (e.Message.Contains(typeof(SandboxCounter).Assembly.GetName().Name!, StringComparison.Ordinal))
{
    Console.Error.WriteLine($"The silos cannot load this demo's code: {e.Message}");
    Console.Error.WriteLine("Start them with IsolateGrains__AssemblySource=BinDirectoryThenUploaded so uploaded assemblies are used.");
    return 1;
}
finally
{
    await host.StopAsync();
}

static async Task<int> WaitForSilosAsync(IClusterClient cluster, int expected, TimeSpan timeout)
{
    var management = cluster.GetGrain<IManagementGrain>(0);
    var started = Stopwatch.GetTimestamp();
    while (true)
    {
        var active = (await Retry.Call(() => management.GetHosts(onlyActive: true))).Count;
        if (active >= expected || Stopwatch.GetElapsedTime(started) > timeout)
        {
            return active;
        }
        await Task.Delay(TimeSpan.FromMilliseconds(500));
    }
}
