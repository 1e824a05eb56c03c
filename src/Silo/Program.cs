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
var configuration = new ConfigurationBuilder()
    .SetBasePath(AppContext.BaseDirectory)
    .AddJsonFile("appsettings.json", optional: true)
    .AddEnvironmentVariables()
    .AddCommandLine(args)
    .Build();

if (configuration.GetValue("Dashboard:Enabled", false))
{
    // The dashboard needs ASP.NET Core; it listens on its own port on every silo.
    var web = WebApplication.CreateBuilder(args);
    web.Configuration.AddConfiguration(configuration);
    web.WebHost.UseSetting("urls", $"http://0.0.0.0:{configuration.GetValue("Dashboard:Port", 8080)}");
    web.UseOrleans(silo => SiloConfiguration.Configure(silo, configuration));
    var app = web.Build();
    app.MapOrleansDashboard();
    await app.RunAsync();
}
else
{
    var builder = Host.CreateApplicationBuilder(args);
    builder.Configuration.AddConfiguration(configuration);
    builder.UseOrleans(silo => SiloConfiguration.Configure(silo, configuration));
    await builder.Build().RunAsync();
}
