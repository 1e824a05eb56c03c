using System.Collections;
using System.Runtime.InteropServices;
using IsolateGrains;

// The host: one per process. The first run on a machine builds the runtime image (a few seconds)
// and caches it; later runs load it in milliseconds.
using var host = new IsolatedRuntimeHost().WithBinDirectoryAssemblyLoader();
using var runtime = new IsolatedRuntime(host);

Console.WriteLine($"Host ready in {host.StartupTime.TotalMilliseconds:0} ms ({(host.LoadedFromCache ? "image from cache" : "image built")}).");

// Where does the code run?
Console.WriteLine($"Host:    I'm running on {RuntimeInformation.OSArchitecture}");
runtime.Invoke(() => Console.WriteLine($"Sandbox: I'm running on {RuntimeInformation.OSArchitecture}"));

// What can it see? The host sees its environment; the sandbox sees none of it.
Console.WriteLine($"Host:    {Environment.GetEnvironmentVariables().Count} environment variables");
var guestVariables = runtime.Invoke(() => Environment.GetEnvironmentVariables().Count);
Console.WriteLine($"Sandbox: {guestVariables} environment variables");

// Captured values are copies: the sandbox cannot change the host's locals or statics.
var localValue = 100;
runtime.Invoke(() =>
{
    localValue++;
    StaticCounter.Value++;
    Console.WriteLine($"Sandbox: localValue = {localValue}, StaticCounter.Value = {StaticCounter.Value}");
});
Console.WriteLine($"Host:    localValue = {localValue}, StaticCounter.Value = {StaticCounter.Value}");

// Objects go in and results come out by serialization.
var people = new[] { new Person("Ann", 5), new Person("Bob", 7) };
var totalAge = runtime.Invoke(() => people.Sum(p => p.Age));
Console.WriteLine($"Sandbox summed the ages: {totalAge}");

// Files on the host are out of reach.
var hostFile = runtime.Invoke(() =>
{
    try { return File.ReadAllText("/etc/hostname"); }
    catch (Exception e) { return $"{e.GetType().Name}: {e.Message}"; }
});
Console.WriteLine($"Sandbox reading /etc/hostname: {hostFile}");

internal static class StaticCounter
{
    public static int Value;
}

public sealed record Person(string Name, int Age);
