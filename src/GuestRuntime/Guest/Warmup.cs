using System.Buffers;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Guest;

/// <summary>
/// Runs once while the pre-initialized image is built, so that the interpreter's first-use work on the
/// dispatcher, reflection and serializer paths is paid for once and captured in the image instead of
/// by every new sandbox. It must not touch anything that should differ between sandboxes (random seeds).
/// </summary>
internal static class Warmup
{
    /// <summary>Exercises the common paths and replies with a small summary.</summary>
    public static void Run(ArrayBufferWriter<byte> output)
    {
        // Boot sets two variables for the runtime itself (invariant globalization, UTC); the runtime has
        // read them by now, and guest code is promised an empty environment.
        foreach (var name in Environment.GetEnvironmentVariables().Keys.Cast<string>().ToArray())
        {
            Environment.SetEnvironmentVariable(name, null);
        }

        var sample = new WarmupSample
        {
            Number = 42,
            Text = "warm",
            Numbers = [1, 2, 3],
            Map = new() { ["a"] = 1 },
            Values = [1.5, 2.5],
            When = new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc),
            Id = Guid.Empty,
        };
        var bytes = MessagePackSerializer.Serialize(sample, IsolatedSerializer.Options);
        var copy = MessagePackSerializer.Deserialize<WarmupSample>(bytes, IsolatedSerializer.Options);
        var list = MessagePackSerializer.Deserialize<List<string>>(MessagePackSerializer.Serialize(new List<string> { "x" }, IsolatedSerializer.Options), IsolatedSerializer.Options);
        var objects = MessagePackSerializer.Deserialize<Dictionary<string, object>>(
            MessagePackSerializer.Serialize(new Dictionary<string, object> { ["k"] = 1, ["s"] = "v" }, IsolatedSerializer.Options), IsolatedSerializer.Options);
        _ = string.Join(",", list) + objects.Count + copy.Text + RuntimeInformationText();

        // A delegate through the same path user lambdas take: type lookup by name, reflection invoke, result serialization.
        var captured = copy.Number;
        Func<int> probe = () => captured + 1;
        MethodRunner.Create(probe.Method).Run(probe.Target, output);
    }

    /// <summary>A static method the image builder invokes through the delegate path.</summary>
    public static int Probe() => 41 + 1;

    private static string RuntimeInformationText() =>
        System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture + " " + Environment.GetEnvironmentVariables().Count;

    /// <summary>A class like the ones users send, to warm the contractless serializer.</summary>
    internal sealed class WarmupSample
    {
        public int Number { get; set; }
        public string? Text { get; set; }
        public List<int> Numbers { get; set; } = [];
        public Dictionary<string, int> Map { get; set; } = [];
        public double[] Values { get; set; } = [];
        public DateTime When { get; set; }
        public Guid Id { get; set; }
    }
}
