using System.Buffers;
using IsolateGrains.Protocol;
using MessagePack;

namespace IsolateGrains.Engine;

/// <summary>
/// Answers what the guest runtime itself asks of the host (today: assembly bytes). The request comes
/// from untrusted code: anything malformed is answered with nil, never an exception.
/// </summary>
internal static class HostRequests
{
    /// <summary>Handles one request with <paramref name="loadAssembly"/> as the source of assemblies.</summary>
    public static byte[] Handle(ReadOnlySpan<byte> request, Func<string, byte[]?> loadAssembly, Action<string>? reportMalformed = null)
    {
        var output = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(output);
        string? assemblyName = null;
        try
        {
            var reader = new MessagePackReader(request.ToArray());
            var count = reader.ReadArrayHeader();
            var kind = count >= 1 ? (HostRequestKind)reader.ReadInt32() : 0;
            if (kind == HostRequestKind.LoadAssembly && count == 2)
            {
                assemblyName = reader.ReadString() ?? "";
            }
        }
        catch (Exception e) when (MalformedMessagePack.Is(e))
        {
            reportMalformed?.Invoke(e.Message);
        }
        // The loaders are the host's code: what they throw is theirs, not a malformed request.
        if (assemblyName is not null && loadAssembly(assemblyName) is { } bytes)
        {
            writer.Write(bytes);
        }
        else
        {
            writer.WriteNil();
        }
        writer.Flush();
        return output.WrittenSpan.ToArray();
    }
}
