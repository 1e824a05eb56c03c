using System.Net;
using IsolateGrains.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Dashboard;
using Orleans.Hosting;
using Orleans.Serialization;
using Orleans.Storage;
using StackExchange.Redis;

namespace IsolateGrains.Silo;

/// <summary>
/// Turns configuration (appsettings.json, then environment variables such as <c>Orleans__Clustering=Redis</c>)
/// into a silo. With no configuration it is a single localhost silo with memory storage.
/// </summary>
public static class SiloConfiguration
{
    /// <summary>Configures <paramref name="silo"/> from <paramref name="configuration"/>.</summary>
    public static void Configure(ISiloBuilder silo, IConfiguration configuration)
    {
        var orleans = configuration.GetSection("Orleans");
        var clusterId = orleans["ClusterId"] ?? "isolategrains";
        var serviceId = orleans["ServiceId"] ?? "isolategrains";
        var siloPort = orleans.GetValue("SiloPort", 11111);
        var gatewayPort = orleans.GetValue("GatewayPort", 30000);
        var redis = orleans["Redis"] ?? "127.0.0.1:6379";

        switch (orleans["Clustering"] ?? "Localhost")
        {
            case "Localhost":
                silo.UseLocalhostClustering(siloPort, gatewayPort, serviceId: serviceId, clusterId: clusterId);
                break;
            case "Redis":
                silo.UseRedisClustering(options => options.ConfigurationOptions = ConfigurationOptions.Parse(redis));
                silo.Configure<ClusterOptions>(options =>
                {
                    options.ClusterId = clusterId;
                    options.ServiceId = serviceId;
                });
                // A silo that advertises a loopback address can only be reached on loopback, so it listens there
                // alone; one that advertises a network address (a container's) listens on every interface.
                var advertisedIP = IPAddress.Parse(orleans["AdvertisedIP"] ?? "127.0.0.1");
                silo.ConfigureEndpoints(advertisedIP, siloPort, gatewayPort, listenOnAnyHostAddress: !IPAddress.IsLoopback(advertisedIP));
                break;
            case var other:
                throw new InvalidOperationException($"Orleans:Clustering must be 'Localhost' or 'Redis', not '{other}'.");
        }
        silo.Configure<ClusterMembershipOptions>(orleans.GetSection("Membership"));

        var isolate = configuration.GetSection("IsolateGrains");
        switch (isolate["Storage"] ?? "Memory")
        {
            case "Memory":
                break; // AddIsolateGrains adds memory storage when none is registered.
            case "Redis":
                // The binary serializer: several times faster than JSON for snapshot-sized states, and smaller.
                silo.AddRedisGrainStorage(IsolateGrainsOptions.DefaultStorageName, storage => storage.Configure<IServiceProvider>((options, services) =>
                {
                    options.ConfigurationOptions = ConfigurationOptions.Parse(redis);
                    options.GrainStorageSerializer = new OrleansGrainStorageSerializer(services.GetRequiredService<Serializer>());
                }));
                break;
            case var other:
                throw new InvalidOperationException($"IsolateGrains:Storage must be 'Memory' or 'Redis', not '{other}'.");
        }

        silo.AddIsolateGrains(options =>
        {
            isolate.Bind(options, binder => binder.ErrorOnUnknownConfiguration = false);
            options.StorageName = IsolateGrainsOptions.DefaultStorageName;
        });

        if (configuration.GetValue("Dashboard:Enabled", false))
        {
            silo.AddDashboard(_ => { });
        }
    }
}
