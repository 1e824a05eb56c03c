using System.Net;
using System.Net.Sockets;

namespace IsolateGrains.Testing;

/// <summary>Free TCP ports on 127.0.0.1, never the same one twice in a test run.</summary>
public static class LocalPorts
{
    private static readonly HashSet<int> Given = [];

    /// <summary>
    /// Returns <paramref name="count"/> distinct ports that were free a moment ago. All listeners are held until
    /// every port is chosen, so the operating system cannot hand out one port twice in one call.
    /// </summary>
    public static int[] Take(int count)
    {
        lock (Given)
        {
            var listeners = new List<TcpListener>();
            try
            {
                var ports = new List<int>();
                while (ports.Count < count)
                {
                    var listener = new TcpListener(IPAddress.Loopback, 0);
                    listener.Start();
                    listeners.Add(listener);
                    var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                    if (Given.Add(port))
                    {
                        ports.Add(port);
                    }
                }
                return [.. ports];
            }
            finally
            {
                foreach (var listener in listeners)
                {
                    listener.Stop();
                }
            }
        }
    }
}
