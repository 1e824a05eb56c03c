using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Hosting;
using StackExchange.Redis;

namespace ClusterDemo;

/// <summary>
/// Configures an Orleans client from the keys the silo reads (src/Silo/SiloConfiguration.cs), so one set of
/// environment variables describes both sides: <c>Orleans__Clustering</c> (Redis or Localhost),
/// <c>Orleans__Redis</c>, <c>Orleans__ClusterId</c>, <c>Orleans__ServiceId</c>, and for localhost
/// clustering <c>Orleans__GatewayPort</c>.
/// </summary>
public static class ClientConfiguration
{
    /// <summary>Configures <paramref name="client"/> from <paramref name="configuration"/>.</summary>
    public static void Configure(IClientBuilder client, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(configuration);
        var orleans = configuration.GetSection("Orleans");
        // The silo's defaults, so that a client and a silo started with no configuration find each other.
        var clusterId = orleans["ClusterId"] ?? "isolategrains";
        var serviceId = orleans["ServiceId"] ?? "isolategrains";

        switch (orleans["Clustering"] ?? "Localhost")
        {
            case "Localhost":
                client.UseLocalhostClustering(orleans.GetValue("GatewayPort", 30000), serviceId, clusterId);
                break;
            case "Redis":
                var redis = orleans["Redis"] ?? "127.0.0.1:6379";
                client.UseRedisClustering(options => options.ConfigurationOptions = ConfigurationOptions.Parse(redis));
                client.Configure<ClusterOptions>(options =>
                {
                    options.ClusterId = clusterId;
                    options.ServiceId = serviceId;
                });
                break;
            case var other:
                throw new InvalidOperationException($"Orleans:Clustering must be 'Localhost' or 'Redis', not '{other}'.");
        }

        // The client re-reads the gateway list from membership this often (Orleans' default is a minute):
        // short, so that silos started later (a restart, a scale-out) are used soon.
        var refresh = orleans.GetValue("GatewayListRefreshPeriod", TimeSpan.FromSeconds(5));
        client.Configure<GatewayOptions>(options => options.GatewayListRefreshPeriod = refresh);
    }
}
