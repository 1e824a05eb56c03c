using IsolateGrains.Silo;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Orleans.Dashboard;
using Orleans.Hosting;

// One silo. With no configuration: a single localhost silo with memory storage. For a cluster:
//   Orleans__Clustering=Redis Orleans__Redis=127.0.0.1:6379 IsolateGrains__Storage=Redis
//   Orleans__SiloPort=11111 Orleans__GatewayPort=30000 dotnet run --project src/Silo
// The same keys are what docker/docker-compose.yml sets.
//
// `--warm-cache` (or IsolateGrains:WarmCacheOnly=true) only builds the sandbox runtime image into the
// module cache (ISOLATEGRAINS_CACHE_DIR) and exits: a Docker image build runs it so containers start warm.
// The switch is taken out of args because the command-line provider would read "--warm-cache x" as a key
// with the value "x", and a bare last "--warm-cache" as nothing at all.
const string WarmCacheSwitch = "--warm-cache";
var warmCacheOnly = args.Contains(WarmCacheSwitch, StringComparer.OrdinalIgnoreCase);
args = [.. args.Where(a => !string.Equals(a, WarmCacheSwitch, StringComparison.OrdinalIgnoreCase))];

var configuration = new ConfigurationBuilder()
    .SetBasePath(AppContext.BaseDirectory)
    .AddJsonFile("appsettings.json", optional: true)
    .AddEnvironmentVariables()
    .AddCommandLine(args)
    .Build();

if (warmCacheOnly || configuration.GetValue("IsolateGrains:WarmCacheOnly", false))
{
    return CacheWarmer.Run(configuration);
}

// The silo is added with Services.AddOrleans, not UseOrleans: UseOrleans hands the host's configuration to
// Orleans, which reads "Orleans:Clustering" itself as a provider section (Orleans:Clustering:ProviderType)
// and fails at start on this silo's plain value "Redis"/"Localhost". SiloConfiguration reads every key.
if (configuration.GetValue("Dashboard:Enabled", false))
{
    // The dashboard needs ASP.NET Core; it listens on its own port on every silo.
    var web = WebApplication.CreateBuilder(args);
    web.Configuration.AddConfiguration(configuration);
    web.WebHost.UseSetting("urls", $"http://0.0.0.0:{configuration.GetValue("Dashboard:Port", 8080)}");
    web.Services.AddOrleans(silo => SiloConfiguration.Configure(silo, configuration));
    var app = web.Build();
    app.MapOrleansDashboard();
    await app.RunAsync();
}
else
{
    var builder = Host.CreateApplicationBuilder(args);
    builder.Configuration.AddConfiguration(configuration);
    builder.Services.AddOrleans(silo => SiloConfiguration.Configure(silo, configuration));
    await builder.Build().RunAsync();
}
return 0;
